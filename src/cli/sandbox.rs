//! `crmsync sandbox`: the Salesforce- and HubSpot-compatible servers on 127.0.0.1, until
//! interrupted (Ctrl-C or SIGTERM). Prints the base URLs and the credentials they accept.

use std::io::Write;

use clap::Args;
use serde_json::json;

use super::{CliError, CliResult, GlobalOpts};
use crate::sandbox::credentials::{
    HUBSPOT_TOKEN, SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET, SALESFORCE_REFRESH_TOKEN,
};
use crate::sandbox::salesforce::API_VERSION;
use crate::sandbox::{Sandboxes, SandboxesConfig};

#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Seeded contacts in each CRM (generated on demand; millions are fine).
    #[arg(long, default_value_t = 1_000)]
    pub contacts: u32,
    /// Seed of the generated data; the same seed gives the same contacts.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Port of the HubSpot API (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub hubspot_port: u16,
    /// Port of the Salesforce login (token) host (0: any free port). The API is served on a
    /// different port, returned as `instance_url` by the token endpoint.
    #[arg(long, default_value_t = 0)]
    pub salesforce_port: u16,
}

pub fn run(global: &GlobalOpts, args: SandboxArgs) -> CliResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(serve(global.json, args))
}

async fn serve(json_output: bool, args: SandboxArgs) -> CliResult {
    let sandboxes = Sandboxes::start_both(SandboxesConfig {
        contacts: args.contacts,
        seed: args.seed,
        hubspot_port: args.hubspot_port,
        salesforce_port: args.salesforce_port,
        ..SandboxesConfig::default()
    })
    .await
    .map_err(|e| CliError::runtime(e.to_string()))?;
    // Before the banner: a script may send SIGTERM as soon as it has read it.
    let shutdown = super::signals::shutdown_signal();
    let sf = &sandboxes.salesforce;
    let hs = &sandboxes.hubspot;
    let banner = if json_output {
        json!({
            "salesforce": {
                "login_url": sf.login_url(),
                "instance_url": sf.instance_url(),
                "api_version": API_VERSION,
                "client_id": SALESFORCE_CLIENT_ID,
                "client_secret": SALESFORCE_CLIENT_SECRET,
                "refresh_token": SALESFORCE_REFRESH_TOKEN,
            },
            "hubspot": {"base_url": hs.base_url(), "token": HUBSPOT_TOKEN},
            "contacts": args.contacts,
            "seed": args.seed,
        })
        .to_string()
    } else {
        format!(
            "Salesforce sandbox ({contacts} contacts, seed {seed})\n\
             \x20 login URL      {login}   (POST /services/oauth2/token)\n\
             \x20 instance URL   {instance}   (API under /services/data/{API_VERSION})\n\
             \x20 client id      {SALESFORCE_CLIENT_ID}\n\
             \x20 client secret  {SALESFORCE_CLIENT_SECRET}\n\
             \x20 refresh token  {SALESFORCE_REFRESH_TOKEN}\n\
             HubSpot sandbox ({contacts} contacts, seed {seed})\n\
             \x20 base URL       {hubspot}\n\
             \x20 token          {HUBSPOT_TOKEN}\n\
             Serving on 127.0.0.1 until interrupted (Ctrl-C).",
            contacts = args.contacts,
            seed = args.seed,
            login = sf.login_url(),
            instance = sf.instance_url(),
            hubspot = hs.base_url(),
        )
    };
    let mut stdout = std::io::stdout();
    // Flushed at once so a script reading the banner through a pipe sees it immediately.
    writeln!(stdout, "{banner}")
        .and_then(|()| stdout.flush())
        .map_err(|e| CliError::runtime(format!("cannot write to stdout: {e}")))?;
    shutdown.await;
    sandboxes.shutdown().await;
    Ok(())
}
