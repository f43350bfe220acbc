//! Group commit for conversation events: one writer thread applies whatever events are queued
//! (up to [`MAX_BATCH`], see [`BatchPolicy`]) in ONE durable store transaction, so concurrent
//! webhooks share an fsync instead of queueing for one each (BENCHMARKS.md, "Conversation
//! events").
//!
//! The request's own task picks and normalizes the event's number before queueing it
//! ([`Engine::conversation_input`]; an invalid number is answered at once), so the writer thread
//! spends its time on the transaction only.
//!
//! Each request waits for the commit of its batch before it is answered, so a 200 still means
//! "durably applied". Within a batch the events are applied in arrival order, each seeing the
//! ones before it; a store failure fails the whole batch (nothing of it is written) and every
//! request in it gets the error.
//!
//! Used when no LLM is configured: `merge` through an LLM can take seconds, and those calls must
//! not stall the writer for everyone; with an LLM, each request applies its own event on the
//! blocking pool instead (see `http/events.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::http::error::{ApiError, ApiResult};
use super::http::events::engine_error;
use crate::engine::{ConversationInput, ConversationReport, Engine};
use crate::event::ConversationEvent;
use crate::merge::Merger;

/// Most events committed together.
pub const MAX_BATCH: usize = 256;
/// Events that may wait for the writer before senders are slowed down.
const QUEUE: usize = 4 * MAX_BATCH;
/// The longest a batch waits for more events before its transaction starts.
pub const MAX_LINGER: Duration = Duration::from_micros(200);
/// How often a lingering writer looks at the queue again.
const LINGER_POLL: Duration = Duration::from_micros(20);

/// Which queued events go into the next commit.
///
/// Everything already queued (up to [`MAX_BATCH`]) — and, when that is fewer events than the
/// previous commit carried, whatever else arrives within [`MAX_LINGER`]. The requests the
/// previous commit answered usually come straight back (a busy client has its next event);
/// without the wait, the first of them to arrive is committed alone and the others queue
/// behind it, so batches split in two and every cycle pays a second fsync (BENCHMARKS.md,
/// "Conversation events": 8 clients gave 4.9 events per commit). A lone event after an idle
/// spell never waits: the previous commit carried one event or the queue grows to match it.
/// The wait is bounded, so it adds at most [`MAX_LINGER`] to any event's latency.
#[derive(Debug)]
pub struct BatchPolicy {
    /// Events in the previous commit.
    previous: usize,
    linger: Duration,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        BatchPolicy::with_linger(MAX_LINGER)
    }
}

impl BatchPolicy {
    /// A policy that waits at most `linger` (the daemon uses [`MAX_LINGER`]).
    pub fn with_linger(linger: Duration) -> Self {
        BatchPolicy {
            previous: 0,
            linger,
        }
    }

    /// The batch that starts with `first`, taking more from `try_next` (which returns `None`
    /// when nothing is queued right now).
    pub fn fill<J>(&mut self, first: J, mut try_next: impl FnMut() -> Option<J>) -> Vec<J> {
        let mut batch = vec![first];
        let deadline = Instant::now() + self.linger;
        loop {
            while batch.len() < MAX_BATCH {
                match try_next() {
                    Some(job) => batch.push(job),
                    None => break,
                }
            }
            if batch.len() >= self.previous.min(MAX_BATCH) || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(LINGER_POLL);
        }
        self.previous = batch.len();
        batch
    }
}

type Job = (
    ConversationInput,
    oneshot::Sender<ApiResult<ConversationReport>>,
);

/// The sending side; the thread stops when every handle is dropped.
pub struct ConversationWriter {
    jobs: mpsc::Sender<Job>,
    engine: Arc<Engine>,
}

impl ConversationWriter {
    /// Starts the writer thread.
    pub fn start(engine: Arc<Engine>, merger: Arc<dyn Merger>) -> std::io::Result<Self> {
        let (jobs, mut queued) = mpsc::channel::<Job>(QUEUE);
        let writer_engine = engine.clone();
        std::thread::Builder::new()
            .name("crmsync-writer".to_string())
            .spawn(move || {
                let mut policy = BatchPolicy::default();
                while let Some(first) = queued.blocking_recv() {
                    let batch = policy.fill(first, || queued.try_recv().ok());
                    let (events, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                    match writer_engine.apply_inputs_blocking(&events, merger.as_ref()) {
                        Ok(reports) => {
                            for (report, reply) in reports.into_iter().zip(replies) {
                                let _ = reply.send(Ok(report));
                            }
                        }
                        Err(err) => {
                            tracing::error!(error = %err, events = events.len(), "a batch of conversations failed");
                            // A store that cannot be written answers 503, like every route.
                            let error = engine_error(err);
                            for reply in replies {
                                let _ = reply.send(Err(error.clone()));
                            }
                        }
                    }
                }
            })?;
        Ok(ConversationWriter { jobs, engine })
    }

    /// Queues one event and waits until its batch is committed.
    pub async fn apply(&self, event: ConversationEvent) -> ApiResult<ConversationReport> {
        let input = self
            .engine
            .conversation_input(event)
            .map_err(engine_error)?;
        let (reply, done) = oneshot::channel();
        self.jobs
            .send((input, reply))
            .await
            .map_err(|_| ApiError::unavailable("the conversation writer has stopped"))?;
        done.await
            .map_err(|_| ApiError::internal("the conversation writer stopped before answering"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    #[test]
    fn takes_everything_queued_up_to_the_cap() {
        let mut queue: VecDeque<usize> = (1..1000).collect();
        let batch = BatchPolicy::default().fill(0, || queue.pop_front());
        assert_eq!(batch, (0..MAX_BATCH).collect::<Vec<_>>());
        assert_eq!(queue.len(), 1000 - MAX_BATCH);
    }

    #[test]
    fn waits_for_as_many_events_as_the_previous_commit_carried() {
        // A long bound, so the test does not depend on how fast this machine is: the batch
        // goes as soon as it holds four events, long before.
        let mut policy = BatchPolicy::with_linger(Duration::from_secs(60));
        let mut queue: VecDeque<usize> = (1..4).collect();
        assert_eq!(policy.fill(0, || queue.pop_front()).len(), 4);
        // The next events trickle in, one every other look at the queue: the batch waits
        // until it has as many as the previous commit, then takes no more looks.
        let mut looks = 0;
        let batch = policy.fill(10, || {
            looks += 1;
            (looks % 2 == 0).then_some(10 + looks)
        });
        assert_eq!(batch, vec![10, 12, 14, 16]);
        assert_eq!(looks, 7);
    }

    #[test]
    fn the_wait_is_bounded_and_a_lone_event_does_not_wait() {
        let mut policy = BatchPolicy::default();
        let mut queue: VecDeque<usize> = (1..8).collect();
        assert_eq!(policy.fill(0, || queue.pop_front()).len(), 8);
        // Nothing more arrives: the batch goes after MAX_LINGER with what it has.
        let started = Instant::now();
        assert_eq!(policy.fill(0, || None::<usize>), vec![0]);
        assert!(started.elapsed() >= MAX_LINGER);
        // The previous commit carried one event, so the next lone event goes at once: the
        // policy returns on its first look at the (empty) queue.
        let mut looks = 0;
        assert_eq!(
            policy.fill(0, || {
                looks += 1;
                None::<usize>
            }),
            vec![0]
        );
        assert_eq!(looks, 1);
    }
}
