//! The daemon over real HTTP on 127.0.0.1: authentication, Retell webhooks, the inbound
//! webhook, conversations, contacts, sync control, limits, metrics, config errors and shutdown.
//!
//! Each test starts its own daemon in-process (port 0, a store in a temporary directory); the
//! shutdown/restart test runs the real binary, because a process ending is what it checks.

#[path = "daemon/harness.rs"]
mod harness;

#[path = "daemon/auth_and_limits.rs"]
mod auth_and_limits;

#[path = "daemon/webhooks.rs"]
mod webhooks;

#[path = "daemon/api.rs"]
mod api;

#[path = "daemon/process.rs"]
mod process;

#[path = "daemon/demo.rs"]
mod demo;

#[path = "daemon/crm.rs"]
mod crm;

#[path = "daemon/retell_chats.rs"]
mod retell_chats;

#[path = "daemon/call_outcomes.rs"]
mod call_outcomes;

#[path = "daemon/conflicts.rs"]
mod conflicts;

#[path = "daemon/outbox.rs"]
mod outbox;

#[path = "daemon/event_ids.rs"]
mod event_ids;

#[path = "daemon/slow_clients.rs"]
mod slow_clients;
