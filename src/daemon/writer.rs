//! Group commit for conversation events: one writer thread applies whatever events are queued
//! (up to [`MAX_BATCH`]) in ONE durable store transaction, so concurrent webhooks share an
//! fsync instead of queueing for one each (BENCHMARKS.md, "Conversation events").
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
                while let Some(first) = queued.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match queued.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    let (events, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                    match writer_engine.apply_inputs_blocking(&events, merger.as_ref()) {
                        Ok(reports) => {
                            for (report, reply) in reports.into_iter().zip(replies) {
                                let _ = reply.send(Ok(report));
                            }
                        }
                        Err(err) => {
                            let message = err.to_string();
                            tracing::error!(%message, events = events.len(), "a batch of conversations failed");
                            for reply in replies {
                                let _ = reply.send(Err(ApiError::internal(message.clone())));
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
