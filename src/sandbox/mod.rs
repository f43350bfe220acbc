//! Loopback servers that speak the Salesforce and HubSpot wire contracts
//! (`docs/sandbox.md`), so the real connectors can be tested and benchmarked
//! without a CRM account.
//!
//! Shared parts: [`clock`] (real time, as the CRMs stamp writes, plus an offset tests can
//! add), [`seed`] (deterministic, lazily generated people), [`faults`] (knobs: throttling,
//! 5xx, latency, token expiry, held requests, daily limit), [`counters`] (requests by endpoint
//! and status) and [`server`] (binding 127.0.0.1 only).

pub mod clock;
pub mod counters;
pub mod faults;
pub mod hubspot;
pub mod salesforce;
pub mod seed;
pub mod server;
pub mod tamper;

pub use counters::Counters;
pub use faults::{FaultConfig, Faults, HoldWhen};
pub use seed::{LeadStage, Person, Population};
pub use server::Listener;
pub use tamper::{Tamper, TamperConfig};

/// Credentials the sandboxes accept (`docs/sandbox.md`).
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

/// Settings for running both sandboxes together (`crmsync sandbox`, `crmsync demo`, benches).
#[derive(Debug, Clone)]
pub struct SandboxesConfig {
    /// Seeded contacts in each CRM.
    pub contacts: u32,
    pub seed: u64,
    /// 0 picks a free port.
    pub hubspot_port: u16,
    /// Port of the Salesforce login (token) listener; the instance listener takes a free port
    /// unless `salesforce_instance_port` is set.
    pub salesforce_port: u16,
    pub salesforce_instance_port: u16,
    pub faults: FaultConfig,
}

impl Default for SandboxesConfig {
    fn default() -> Self {
        SandboxesConfig {
            contacts: 1_000,
            seed: 1,
            hubspot_port: 0,
            salesforce_port: 0,
            salesforce_instance_port: 0,
            faults: FaultConfig::default(),
        }
    }
}

/// A Salesforce and a HubSpot sandbox, started together.
#[derive(Debug)]
pub struct Sandboxes {
    pub salesforce: salesforce::SalesforceSandbox,
    pub hubspot: hubspot::HubSpotSandbox,
}

impl Sandboxes {
    /// Start both on 127.0.0.1 with the same seed and contact count. Needs a tokio runtime.
    pub async fn start_both(config: SandboxesConfig) -> Result<Sandboxes, SandboxesError> {
        let salesforce =
            salesforce::SalesforceSandbox::start(salesforce::SalesforceSandboxConfig {
                contacts: config.contacts,
                seed: config.seed,
                faults: config.faults.clone(),
                login_port: config.salesforce_port,
                instance_port: config.salesforce_instance_port,
                ..salesforce::SalesforceSandboxConfig::default()
            })
            .await
            .map_err(SandboxesError::Salesforce)?;
        let hubspot = hubspot::HubSpotSandbox::start(hubspot::HubSpotSandboxConfig {
            contacts: config.contacts,
            seed: config.seed,
            port: config.hubspot_port,
            faults: config.faults,
            ..hubspot::HubSpotSandboxConfig::default()
        })
        .await
        .map_err(SandboxesError::HubSpot)?;
        Ok(Sandboxes {
            salesforce,
            hubspot,
        })
    }

    /// Stop both, waiting for in-flight requests.
    pub async fn shutdown(self) {
        self.salesforce.shutdown().await;
        self.hubspot.shutdown().await;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxesError {
    #[error("Salesforce sandbox: {0}")]
    Salesforce(SandboxError),
    #[error("HubSpot sandbox: {0}")]
    HubSpot(hubspot::HubSpotSandboxError),
}
