//! A HubSpot-compatible loopback server (crm_apis.md §1, §4): contacts, calls and communications
//! over the CRM v3 object, search, batch and properties APIs, v4 associations, HubSpot's error
//! envelope and rate-limit signals, with seeded contacts and fault knobs.

pub mod errors;
pub mod record;
pub mod schema;
pub mod seed_contacts;
pub mod state;
pub mod table;
pub mod validate;
