//! The sandboxes' clock: the real wall-clock time, as the CRMs stamp their writes, plus an
//! offset a test can add ([`SandboxClock::advance`]) to stand for time passing without
//! waiting for it. It never goes back: a write is never stamped before an earlier one.
//!
//! Seeded records keep their fixed dates in the year before [`super::seed::SANDBOX_EPOCH_MS`],
//! which is in the past, so every sandbox-side write is later than every seeded record.

/// Real time in epoch ms, plus an offset, never going back.
#[derive(Debug, Clone, Default)]
pub struct SandboxClock {
    /// Added to the real time (only ever grows).
    offset_ms: i64,
    /// The latest time handed out.
    last_ms: i64,
}

impl SandboxClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current time (epoch ms).
    pub fn now_ms(&self) -> i64 {
        real_ms().saturating_add(self.offset_ms).max(self.last_ms)
    }

    /// The time to stamp a write with (all records saved by one request share it).
    pub fn tick(&mut self) -> i64 {
        self.last_ms = self.now_ms();
        self.last_ms
    }

    /// Moves the clock `ms` forward (a negative amount does nothing: time never goes back).
    pub fn advance(&mut self, ms: i64) {
        self.offset_ms = self.offset_ms.saturating_add(ms.max(0));
    }
}

fn real_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_follow_the_real_clock_and_advance_moves_them() {
        let mut clock = SandboxClock::new();
        let before = real_ms();
        let first = clock.tick();
        assert!(first >= before && first <= real_ms(), "{first} vs {before}");
        clock.advance(60_000);
        let later = clock.tick();
        assert!(later >= first + 60_000, "{later} vs {first}");
        clock.advance(-120_000);
        assert!(clock.tick() >= later, "never back");
    }
}
