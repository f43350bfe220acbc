//! Request parameters as HubSpot reads them: repeated or comma-separated `properties`, numeric
//! `limit`, opaque `after`, `archived`, and JSON bodies answered with the error envelope (not
//! axum's plain-text rejection) when malformed.

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::errors::ApiError;

/// Query parameters of list and read requests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryParams {
    pub limit: Option<usize>,
    pub after: Option<String>,
    pub properties: Vec<String>,
    /// `propertiesWithHistory`: properties to return with their modification times.
    pub history: Vec<String>,
    pub associations: Vec<String>,
    pub archived: bool,
    pub id_property: Option<String>,
}

impl QueryParams {
    /// Parses `key=value` pairs; array parameters may repeat (`properties=a&properties=b`) or be
    /// comma-separated (`properties=a,b`) (crm_apis.md §1.3).
    pub fn parse(pairs: &[(String, String)]) -> Result<QueryParams, ApiError> {
        let mut params = QueryParams::default();
        for (key, value) in pairs {
            match key.as_str() {
                "limit" => {
                    let limit = value.trim().parse::<usize>().map_err(|_| {
                        ApiError::validation(format!(
                            "Unable to parse value for query parameter limit: \"{value}\" is not an integer"
                        ))
                    })?;
                    params.limit = Some(limit);
                }
                "after" => params.after = Some(value.clone()),
                "properties" => params.properties.extend(split_list(value)),
                "propertiesWithHistory" => params.history.extend(split_list(value)),
                "associations" => params.associations.extend(split_list(value)),
                "archived" => params.archived = value.eq_ignore_ascii_case("true"),
                "idProperty" => params.id_property = Some(value.clone()),
                _ => {}
            }
        }
        Ok(params)
    }

    /// The properties to return: the requested ones, else the object type's defaults.
    pub fn property_names<'a>(&'a self, defaults: &'a [&'static str]) -> Vec<&'a str> {
        if self.properties.is_empty() {
            defaults.to_vec()
        } else {
            self.properties.iter().map(String::as_str).collect()
        }
    }
}

fn split_list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Parses a JSON request body into `T`, with HubSpot's error envelope on failure.
pub fn json_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|err| {
        ApiError::validation(format!(
            "Invalid input JSON on line {}, column {}: {err}",
            err.line(),
            err.column()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn properties_repeat_or_split_on_commas() {
        let params = QueryParams::parse(&pairs(&[
            ("properties", "phone,email"),
            ("properties", "firstname"),
            ("limit", "100"),
            ("archived", "TRUE"),
            ("after", "1100"),
        ]))
        .unwrap();
        assert_eq!(params.properties, ["phone", "email", "firstname"]);
        assert_eq!(params.limit, Some(100));
        assert!(params.archived);
        assert_eq!(params.after.as_deref(), Some("1100"));
    }

    #[test]
    fn a_bad_limit_is_a_validation_error() {
        let err = QueryParams::parse(&pairs(&[("limit", "ten")])).unwrap_err();
        assert_eq!(err.category, "VALIDATION_ERROR");
        assert!(err.message.contains("limit"), "{}", err.message);
    }

    #[test]
    fn bad_json_names_line_and_column() {
        let err = json_body::<serde_json::Value>(&Bytes::from_static(b"{\"a\":")).unwrap_err();
        assert!(err.message.contains("line 1"), "{}", err.message);
    }
}
