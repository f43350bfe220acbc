//! Dynamic variables: a contact's fields as strings for an agent (DESIGN.md §3).

use std::collections::BTreeMap;

use super::{Engine, EngineError};
use crate::value::vars::dynamic_variables;

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
        vars.insert("phone_number".to_string(), contact.phone);
        Ok(Some(vars))
    }
}
