//! crmsync: keep an AI voice/chat agent platform's contacts in two-way sync with Salesforce and
//! HubSpot, driven by a small typed rule language.
//!
//! The data path, one module per stage (see `docs/ARCHITECTURE.md`):
//!
//! ```text
//! rule files ─► lang (parse ─► check ─► compiled Ruleset ─► pure evaluation)
//! CRM pages ──► connector ─► engine::inbound ──┐
//! conversation event ─► engine::analysis ──────┼─► store (contact + outbox, one transaction) ─► dispatch ─► connector
//! manual edit ─► engine::manual ───────────────┘
//! ```

pub mod cli;
pub mod config;
pub mod connector;
pub mod daemon;
pub mod demo;
pub mod engine;
pub mod event;
pub mod lang;
pub mod merge;
pub mod sandbox;
pub mod store;
pub mod value;
