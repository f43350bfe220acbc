//! Dynamic variables: a contact's fields as strings for an agent (`docs/sync-semantics.md`).

use std::collections::BTreeMap;

use super::{Engine, EngineError};
use crate::value::vars::dynamic_variables;

/// The variable listing, comma-separated, the contact fields a CRM refused and so holds a
/// different value for, until the next sync reads the record back.
pub const OUT_OF_STEP_VARIABLE: &str = "crm_out_of_step";

impl Engine {
    /// Every non-null field of the contact with this phone as a string (plus `phone_number`);
    /// `None` when there is no such contact (the variables are then simply absent).
    pub fn dynamic_variables(
        &self,
        phone: &str,
    ) -> Result<Option<BTreeMap<String, String>>, EngineError> {
        let phone = self.normalize_phone(phone)?;
        let Some(contact) = self.store.contact(&phone)? else {
            return Ok(None);
        };
        let mut vars = dynamic_variables(&contact.fields);
        let out_of_step = self.out_of_step_fields(&contact);
        if !out_of_step.is_empty() {
            // The agent must not take these for what the CRM holds (the CRM refused them).
            vars.insert(OUT_OF_STEP_VARIABLE.to_string(), out_of_step.join(","));
        }
        vars.insert("phone_number".to_string(), contact.phone);
        Ok(Some(vars))
    }

    /// The contact fields whose value a CRM refused (read by the outbound mapping of an
    /// out-of-step CRM field), in name order.
    fn out_of_step_fields(&self, contact: &crate::store::ContactRecord) -> Vec<String> {
        let mut fields: Vec<String> = Vec::new();
        for (connection, crm_fields) in &contact.out_of_step {
            for (target, reads) in self.links(connection) {
                if crm_fields.contains_key(target) {
                    fields.extend(reads.iter().cloned());
                }
            }
        }
        fields.sort();
        fields.dedup();
        fields
    }
}
