//! Loopback servers that speak the Salesforce and HubSpot wire contracts
//! (`reference/crm_apis.md` §4), so the real connectors can be tested and benchmarked
//! without a CRM account.
//!
//! Shared parts: [`seed`] (deterministic, lazily generated people), [`faults`] (knobs: throttling,
//! 5xx, latency, token expiry, held requests, daily limit), [`counters`] (requests by endpoint
//! and status) and [`server`] (binding 127.0.0.1 only).

pub mod counters;
pub mod faults;
pub mod hubspot;
pub mod salesforce;
pub mod seed;
pub mod server;

pub use counters::Counters;
pub use faults::{FaultConfig, Faults, HoldWhen};
pub use seed::{LeadStage, Person, Population};
pub use server::Listener;

/// Credentials the sandboxes accept (DESIGN.md §4).
pub mod credentials {
    /// HubSpot private-app token.
    pub const HUBSPOT_TOKEN: &str = "sandbox-token";
    /// Salesforce connected-app client id (client credentials flow).
    pub const SALESFORCE_CLIENT_ID: &str = "sandbox-client";
    /// Salesforce connected-app client secret.
    pub const SALESFORCE_CLIENT_SECRET: &str = "sandbox-secret";
    /// A Salesforce refresh token, as if obtained earlier through an authorization-code flow;
    /// accepted by the `refresh_token` grant.
    pub const SALESFORCE_REFRESH_TOKEN: &str = "sandbox-refresh-token";
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
}
