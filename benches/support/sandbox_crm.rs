//! One in-process sandbox CRM (Salesforce or HubSpot) holding contacts with known phone
//! numbers, as a daemon under load sees it: the config section that points a connection at it,
//! its live fault knobs, and the activities it was sent, read back by conversation id.

use std::collections::BTreeMap;

use crmsync::sandbox::credentials::{SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET};
use crmsync::sandbox::hubspot::{HubSpotSandbox, HubSpotSandboxConfig};
use crmsync::sandbox::salesforce::{SalesforceSandbox, SalesforceSandboxConfig};
use crmsync::sandbox::{FaultConfig, Faults};
use serde_json::json;

/// Which CRM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crm {
    Salesforce,
    HubSpot,
}

impl Crm {
    /// The connection name the example rules (`rules/`) give it.
    pub fn connection(self) -> &'static str {
        match self {
            Crm::Salesforce => "salesforce",
            Crm::HubSpot => "hubspot",
        }
    }

    /// `salesforce` or `hubspot` (any case).
    pub fn parse(name: &str) -> Option<Crm> {
        match name.trim().to_ascii_lowercase().as_str() {
            "salesforce" => Some(Crm::Salesforce),
            "hubspot" => Some(Crm::HubSpot),
            _ => None,
        }
    }
}

/// The environment variable the daemon reads the CRM secret from.
const SECRET_ENV: &str = "CRMSYNC_BENCH_CRM_SECRET";

/// A running sandbox CRM.
pub enum SandboxCrm {
    Salesforce(SalesforceSandbox),
    HubSpot(HubSpotSandbox),
}

impl SandboxCrm {
    /// A sandbox holding `contacts` contacts, contact `i` with the phone number
    /// `support::e164(i)` written in national notation (the daemon normalizes it).
    pub async fn start(crm: Crm, contacts: u64) -> Result<SandboxCrm, String> {
        match crm {
            Crm::Salesforce => {
                let sandbox = SalesforceSandbox::start(SalesforceSandboxConfig {
                    contacts: 0,
                    ..SalesforceSandboxConfig::default()
                })
                .await
                .map_err(|e| format!("Salesforce sandbox: {e}"))?;
                for i in 0..contacts {
                    let (area, exchange, line) = super::national_phone(i);
                    sandbox
                        .create_contact(json!({
                            "FirstName": "Soak",
                            "LastName": format!("Contact {i}"),
                            "Phone": format!("({area}) {exchange}-{line}"),
                        }))
                        .map_err(|e| format!("Salesforce sandbox contact {i}: {e}"))?;
                }
                Ok(SandboxCrm::Salesforce(sandbox))
            }
            Crm::HubSpot => {
                let sandbox = HubSpotSandbox::start(HubSpotSandboxConfig {
                    contacts: 0,
                    ..HubSpotSandboxConfig::default()
                })
                .await
                .map_err(|e| format!("HubSpot sandbox: {e}"))?;
                for i in 0..contacts {
                    let (area, exchange, line) = super::national_phone(i);
                    let phone = format!("({area}) {exchange}-{line}");
                    let last = format!("Contact {i}");
                    sandbox
                        .create_contact(&[
                            ("phone", phone.as_str()),
                            ("firstname", "Soak"),
                            ("lastname", last.as_str()),
                        ])
                        .map_err(|e| format!("HubSpot sandbox contact {i}: {e}"))?;
                }
                Ok(SandboxCrm::HubSpot(sandbox))
            }
        }
    }

    pub fn crm(&self) -> Crm {
        match self {
            SandboxCrm::Salesforce(_) => Crm::Salesforce,
            SandboxCrm::HubSpot(_) => Crm::HubSpot,
        }
    }

    /// The `connections:` entry of a crmsync config for this sandbox (YAML, indented under
    /// `connections:`); the secret is read from [`SandboxCrm::secret_env`].
    pub fn connection_yaml(&self) -> String {
        match self {
            SandboxCrm::Salesforce(s) => format!(
                "  salesforce:\n    login_url: {}\n    client_id: {SALESFORCE_CLIENT_ID}\n    \
                 client_secret_env: {SECRET_ENV}\n",
                s.login_url()
            ),
            SandboxCrm::HubSpot(s) => format!(
                "  hubspot:\n    base_url: {}\n    token_env: {SECRET_ENV}\n",
                s.base_url()
            ),
        }
    }

    /// The (variable, value) the daemon's environment needs for [`SandboxCrm::connection_yaml`].
    pub fn secret_env(&self) -> (&'static str, &'static str) {
        match self {
            SandboxCrm::Salesforce(_) => (SECRET_ENV, SALESFORCE_CLIENT_SECRET),
            SandboxCrm::HubSpot(s) => (SECRET_ENV, s.token()),
        }
    }

    /// The live fault knobs.
    pub fn faults(&self) -> &Faults {
        match self {
            SandboxCrm::Salesforce(s) => s.faults(),
            SandboxCrm::HubSpot(s) => s.faults(),
        }
    }

    /// Sets the fault knobs (from now on).
    pub fn set_faults(&self, config: FaultConfig) {
        self.faults().set(config);
    }

    /// API requests answered so far, by HTTP status.
    pub fn requests_by_status(&self) -> BTreeMap<u16, u64> {
        let snapshot = match self {
            SandboxCrm::Salesforce(s) => s.counters().snapshot(),
            SandboxCrm::HubSpot(s) => s.counters().snapshot(),
        };
        let mut out = BTreeMap::new();
        // Each request is counted as `endpoint` and as `endpoint STATUS`; the latter only.
        for (key, count) in snapshot {
            if let Some(status) = key
                .rsplit_once(' ')
                .and_then(|(_, status)| status.parse::<u16>().ok())
            {
                *out.entry(status).or_default() += count;
            }
        }
        out
    }

    /// Conversation id → how many activities (Salesforce Tasks, HubSpot calls) the CRM holds
    /// for it. Salesforce keeps the id in `CallObject`; HubSpot in the call title
    /// (`Call <id>`).
    pub fn activities_by_conversation(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        match self {
            SandboxCrm::Salesforce(s) => {
                for task in s.tasks() {
                    if let Some(id) = task["CallObject"].as_str() {
                        *out.entry(id.to_string()).or_default() += 1;
                    }
                }
            }
            SandboxCrm::HubSpot(s) => {
                for call in s.calls().into_iter().filter(|c| !c.archived) {
                    if let Some(id) = call
                        .properties
                        .get("hs_call_title")
                        .and_then(|t| t.strip_prefix("Call "))
                    {
                        *out.entry(id.to_string()).or_default() += 1;
                    }
                }
            }
        }
        out
    }

    pub async fn shutdown(self) {
        match self {
            SandboxCrm::Salesforce(s) => s.shutdown().await,
            SandboxCrm::HubSpot(s) => s.shutdown().await,
        }
    }
}
