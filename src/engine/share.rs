//! How many records of each page the preparing thread of an import evaluates ahead of the
//! commit.
//!
//! A bulk import (a file, a full sync) is a two-thread pipeline: one thread reads and prepares
//! pages, the other writes them to the store, which only it can do. Evaluating a record into
//! a new contact (rules and row encoding) can happen on either side ([`Engine::prepare_page`]).
//! The split that keeps both threads busy depends on the rules, the records and the machine
//! (a shared one changes by the minute), so it is found while the import runs: the preparing
//! thread takes on more when prepared pages queue up for the committer, and gives work back
//! when the committer has nothing queued and so waits for it.
//!
//! [`Engine::prepare_page`]: super::Engine::prepare_page

/// The share of each page built ahead, in thousandths, adjusted after every page.
#[derive(Debug, Clone)]
pub struct FreshShare {
    permille: usize,
    adapts: bool,
}

/// The change per page, in thousandths.
const STEP: usize = 50;

impl FreshShare {
    /// Starts at half of every page.
    pub fn balanced() -> Self {
        FreshShare {
            permille: 500,
            adapts: true,
        }
    }

    /// Never builds ahead (pages that mostly update known contacts).
    pub fn none() -> Self {
        FreshShare {
            permille: 0,
            adapts: false,
        }
    }

    /// How many records of a page of `records` to build ahead.
    pub fn of(&self, records: usize) -> usize {
        records * self.permille / 1000
    }

    /// After a page is prepared: `queued` prepared pages were still waiting for the committer,
    /// out of at most `capacity`.
    pub fn observe(&mut self, queued: usize, capacity: usize) {
        if !self.adapts {
            return;
        }
        if queued == 0 {
            // The committer is idle, waiting for this thread: give work back.
            self.permille = self.permille.saturating_sub(STEP);
        } else if queued >= capacity {
            // The committer is behind: take work off it.
            self.permille = (self.permille + STEP).min(1000);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_follows_the_queue_within_the_page() {
        let mut share = FreshShare::balanced();
        assert_eq!(share.of(1000), 500);
        share.observe(2, 2);
        assert_eq!(share.of(1000), 550);
        assert_eq!(share.of(100), 55);
        share.observe(1, 2);
        assert_eq!(share.of(1000), 550);
        for _ in 0..100 {
            share.observe(0, 2);
        }
        assert_eq!(share.of(1000), 0);
        for _ in 0..100 {
            share.observe(2, 2);
        }
        assert_eq!(share.of(1000), 1000);
        let mut none = FreshShare::none();
        none.observe(2, 2);
        assert_eq!(none.of(1000), 0);
    }
}
