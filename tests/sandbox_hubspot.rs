//! The HubSpot sandbox over real HTTP on 127.0.0.1: the wire contract of crm_apis.md §1/§4 as
//! a client sees it.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use crmsync::sandbox::hubspot::{HubSpotSandbox, HubSpotSandboxConfig};
use crmsync::sandbox::seed::Population;
use crmsync::sandbox::{FaultConfig, HoldWhen};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

struct Api {
    sandbox: HubSpotSandbox,
    http: reqwest::Client,
    token: String,
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Api {
    async fn start(contacts: u32) -> Api {
        Api::with(HubSpotSandboxConfig {
            contacts,
            seed: 11,
            ..HubSpotSandboxConfig::default()
        })
        .await
    }

    async fn with(config: HubSpotSandboxConfig) -> Api {
        let sandbox = HubSpotSandbox::start(config).await.expect("sandbox starts");
        Api {
            token: sandbox.token().to_string(),
            sandbox,
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let url = format!("{}{path}", self.sandbox.base_url());
        let mut request = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body read");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn search(&self, body: Value) -> Reply {
        self.post("/crm/v3/objects/contacts/search", body).await
    }
}

fn is_uuid(value: &Value) -> bool {
    let text = value.as_str().unwrap_or_default();
    let lengths: Vec<usize> = text.split('-').map(str::len).collect();
    lengths == [8, 4, 4, 4, 12] && text.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

fn assert_envelope(reply: &Reply, status: u16, category: &str) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(reply.body["status"], "error", "{}", reply.body);
    assert_eq!(reply.body["category"], category, "{}", reply.body);
    assert!(reply.body["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert!(is_uuid(&reply.body["correlationId"]), "{}", reply.body);
}

fn ids(results: &Value) -> Vec<u64> {
    results
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|r| r["id"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0))
                .collect()
        })
        .unwrap_or_default()
}

fn modified_filter(operator: &str, value: i64) -> Value {
    json!({"propertyName": "lastmodifieddate", "operator": operator, "value": value.to_string()})
}

mod auth {
    use super::*;

    #[tokio::test]
    async fn requests_without_the_token_get_hubspots_401_envelope() {
        let api = Api::start(5).await;
        let url = format!("{}/crm/v3/objects/contacts", api.sandbox.base_url());
        let none = api.http.get(&url).send().await.unwrap();
        assert_eq!(none.status(), 401);
        let body: Value = none.json().await.unwrap();
        assert_eq!(body["category"], "INVALID_AUTHENTICATION");
        assert!(is_uuid(&body["correlationId"]));
        let wrong = api
            .http
            .get(&url)
            .bearer_auth("pat-na1-nope")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        assert_eq!(api.get("/crm/v3/objects/contacts").await.status, 200);
        assert_eq!(
            api.sandbox.counters().get_status("hs.contacts.list", 401),
            2
        );
    }

    #[tokio::test]
    async fn oauth_tokens_work_until_revoked_and_the_static_token_sees_one_401() {
        let mut api = Api::start(5).await;
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", "sandbox-client"),
            ("client_secret", "sandbox-secret"),
            ("refresh_token", "sandbox-refresh-token"),
        ];
        let url = format!("{}/oauth/v1/token", api.sandbox.base_url());
        let token: Value = api
            .http
            .post(&url)
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(token["token_type"], "bearer");
        assert_eq!(token["expires_in"], 1800);
        let static_token = std::mem::take(&mut api.token);
        api.token = token["access_token"].as_str().unwrap().to_string();
        assert_eq!(api.get("/crm/v3/objects/contacts").await.status, 200);
        // The next API request (number 2) revokes every token.
        let next = api.sandbox.faults().requests_seen() + 1;
        api.sandbox
            .faults()
            .update(|f| f.revoke_tokens_at_request = Some(next));
        let revoked = api.get("/crm/v3/objects/contacts").await;
        assert_envelope(&revoked, 401, "EXPIRED_AUTHENTICATION");
        assert_envelope(
            &api.get("/crm/v3/objects/contacts").await,
            401,
            "EXPIRED_AUTHENTICATION",
        );
        // A private-app token is refused only on the request the knob names.
        api.token = static_token;
        let again = api.sandbox.faults().requests_seen() + 1;
        api.sandbox
            .faults()
            .update(|f| f.revoke_tokens_at_request = Some(again));
        assert_envelope(
            &api.get("/crm/v3/objects/contacts").await,
            401,
            "EXPIRED_AUTHENTICATION",
        );
        assert_eq!(api.get("/crm/v3/objects/contacts").await.status, 200);
        let bad: Value = api
            .http
            .post(&url)
            .form(&[("grant_type", "refresh_token"), ("client_id", "x")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(bad["status"], "BAD_CLIENT_ID");
    }
}

mod list {
    use super::*;

    #[tokio::test]
    async fn pages_of_100_cover_every_contact_once_in_id_order() {
        let api = Api::start(250).await;
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut path = "/crm/v3/objects/contacts?limit=100&properties=phone,email&properties=hs_lead_status".to_string();
            if let Some(a) = &after {
                path.push_str(&format!("&after={a}"));
            }
            let reply = api.get(&path).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            pages += 1;
            for record in reply.body["results"].as_array().unwrap() {
                assert!(record["properties"]["hs_object_id"].is_string());
                assert!(record["properties"]["lastmodifieddate"].is_string());
                assert!(
                    record["properties"].get("phone").is_some(),
                    "requested, may be null"
                );
                assert!(
                    record["properties"].get("firstname").is_none(),
                    "not requested"
                );
                assert_eq!(record["archived"], false);
                assert_eq!(
                    record["updatedAt"],
                    record["properties"]["lastmodifieddate"]
                );
            }
            seen.extend(ids(&reply.body["results"]));
            match reply.body["paging"]["next"]["after"].as_str() {
                Some(next) => after = Some(next.to_string()),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        let expected: Vec<u64> = (0..250).map(HubSpotSandbox::contact_id).collect();
        assert_eq!(seen, expected);
        assert_eq!(
            api.sandbox.counters().get_status("hs.contacts.list", 200),
            3
        );
    }

    #[tokio::test]
    async fn seeded_values_are_strings_with_messy_phones() {
        let api = Api::start(300).await;
        let reply = api
            .get("/crm/v3/objects/contacts?limit=100&properties=phone")
            .await;
        let phones: Vec<&str> = reply.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["properties"]["phone"].as_str())
            .collect();
        assert!(phones.iter().any(|p| p.starts_with('(')), "{phones:?}");
        assert!(phones.iter().any(|p| p.starts_with('+')), "{phones:?}");
        // The same data as the shared generator produces.
        let person = Population::new(300, 11).person(0);
        let first = &reply.body["results"][0]["properties"];
        assert_eq!(first["phone"].as_str(), person.phone.as_deref());
        assert_eq!(
            api.sandbox
                .contact_property(HubSpotSandbox::contact_id(0), "firstname"),
            Some(person.first_name)
        );
    }

    #[tokio::test]
    async fn limit_over_100_and_bad_cursors_are_validation_errors() {
        let api = Api::start(5).await;
        assert_envelope(
            &api.get("/crm/v3/objects/contacts?limit=101").await,
            400,
            "VALIDATION_ERROR",
        );
        assert_envelope(
            &api.get("/crm/v3/objects/contacts?after=xyz").await,
            400,
            "VALIDATION_ERROR",
        );
        assert_envelope(
            &api.get("/crm/v3/objects/deals").await,
            400,
            "VALIDATION_ERROR",
        );
        let wrong_method = api.get("/crm/v3/objects/contacts/search").await;
        assert_envelope(&wrong_method, 405, "VALIDATION_ERROR");
        assert_envelope(&api.get("/crm/v9/nothing").await, 404, "OBJECT_NOT_FOUND");
    }

    #[tokio::test]
    async fn single_reads_return_the_record_or_404() {
        let api = Api::start(5).await;
        let id = HubSpotSandbox::contact_id(2);
        let reply = api
            .get(&format!(
                "/crm/v3/objects/contacts/{id}?properties=firstname,notes"
            ))
            .await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body["id"], id.to_string());
        assert!(reply.body["properties"]["firstname"].is_string());
        assert_envelope(
            &api.get("/crm/v3/objects/contacts/999999").await,
            404,
            "OBJECT_NOT_FOUND",
        );
    }
}

mod search {
    use super::*;

    #[tokio::test]
    async fn cursor_filters_sorts_and_totals_follow_the_data() {
        let api = Api::start(600).await;
        let population = Population::new(600, 11);
        let cursor = population.modified_ms(300);
        let expected: Vec<u64> = (0..600)
            .filter(|i| population.modified_ms(*i) >= cursor)
            .map(HubSpotSandbox::contact_id)
            .collect();
        let mut seen = Vec::new();
        let mut after = "0".to_string();
        loop {
            let reply = api
                .search(json!({
                    "filterGroups": [{"filters": [modified_filter("GTE", cursor)]}],
                    "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                    "properties": ["phone", "lastmodifieddate"],
                    "limit": 200,
                    "after": after,
                }))
                .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            assert_eq!(reply.body["total"], expected.len());
            assert!(
                reply.headers.get("x-hubspot-ratelimit-max").is_none(),
                "no headers on search"
            );
            seen.extend(ids(&reply.body["results"]));
            match reply.body["paging"]["next"]["after"].as_str() {
                Some(next) => after = next.to_string(),
                None => break,
            }
        }
        assert_eq!(seen, expected);

        // GT excludes the cursor's own tie group; hs_object_id GT splits a tie.
        let gt = api
            .search(
                json!({"filterGroups": [{"filters": [modified_filter("GT", cursor)]}], "limit": 1}),
            )
            .await;
        let ties = expected
            .iter()
            .filter(|id| {
                population.modified_ms((**id - HubSpotSandbox::contact_id(0)) as u32) == cursor
            })
            .count();
        assert_eq!(gt.body["total"], expected.len() - ties);
        let split = api
            .search(json!({
                "filterGroups": [{"filters": [
                    modified_filter("EQ", cursor),
                    {"propertyName": "hs_object_id", "operator": "GT", "value": expected[0].to_string()}
                ]}],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
            }))
            .await;
        assert_eq!(ids(&split.body["results"]), expected[1..ties].to_vec());
    }

    #[tokio::test]
    async fn operators_or_groups_and_descending_sorts() {
        let api = Api::start(200).await;
        let email_of = |i: u32| {
            api.sandbox
                .contact_property(HubSpotSandbox::contact_id(i), "email")
        };
        let (index, email) = (0..200).find_map(|i| email_of(i).map(|e| (i, e))).unwrap();
        let eq = api
            .search(json!({"filterGroups": [{"filters": [
                {"propertyName": "email", "operator": "EQ", "value": email.trim().to_uppercase()}]}]}))
            .await;
        assert_eq!(
            ids(&eq.body["results"]),
            [HubSpotSandbox::contact_id(index)]
        );

        let a = HubSpotSandbox::contact_id(3);
        let b = HubSpotSandbox::contact_id(150);
        let either = api
            .search(json!({
                "filterGroups": [
                    {"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": a.to_string()}]},
                    {"filters": [{"propertyName": "hs_object_id", "operator": "IN", "values": [b.to_string()]}]}
                ],
                "sorts": [{"propertyName": "hs_object_id", "direction": "DESCENDING"}]
            }))
            .await;
        assert_eq!(ids(&either.body["results"]), [b, a]);

        let between = api
            .search(json!({"filterGroups": [{"filters": [{
                "propertyName": "hs_object_id", "operator": "BETWEEN",
                "value": HubSpotSandbox::contact_id(10).to_string(),
                "highValue": HubSpotSandbox::contact_id(14).to_string()}]}]}))
            .await;
        assert_eq!(between.body["total"], 5);

        let with_status = api
            .search(json!({"filterGroups": [{"filters": [
                {"propertyName": "hs_lead_status", "operator": "HAS_PROPERTY"}]}], "limit": 0}))
            .await;
        let without = api
            .search(json!({"filterGroups": [{"filters": [
                {"propertyName": "hs_lead_status", "operator": "NOT_HAS_PROPERTY"}]}], "limit": 0}))
            .await;
        let (with, without) = (
            with_status.body["total"].as_u64().unwrap(),
            without.body["total"].as_u64().unwrap(),
        );
        assert_eq!(with + without, 200);
        assert!(with > 150 && without > 0, "{with} / {without}");

        let newest = api
            .search(json!({"sorts": [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}], "limit": 3}))
            .await;
        let got = ids(&newest.body["results"]);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], HubSpotSandbox::contact_id(199));
    }

    #[tokio::test]
    async fn paging_past_10000_results_is_a_400_and_limit_caps_at_200() {
        let api = Api::start(10_050).await;
        let last_page = api.search(json!({"limit": 200, "after": "9800"})).await;
        assert_eq!(last_page.status, 200);
        assert_eq!(last_page.body["total"], 10_050);
        assert_eq!(last_page.body["paging"]["next"]["after"], "10000");
        let beyond = api.search(json!({"limit": 200, "after": "10000"})).await;
        assert_envelope(&beyond, 400, "VALIDATION_ERROR");
        assert_envelope(
            &api.search(json!({"limit": 201})).await,
            400,
            "VALIDATION_ERROR",
        );
        let unknown = api
            .search(json!({"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "1"}]}]}))
            .await;
        assert_envelope(&unknown, 400, "VALIDATION_ERROR");
    }

    #[tokio::test]
    async fn archived_contacts_never_appear_in_search() {
        let api = Api::start(20).await;
        let id = HubSpotSandbox::contact_id(4);
        api.sandbox.archive_contact(id).unwrap();
        let all = api.search(json!({"limit": 100})).await;
        assert_eq!(all.body["total"], 19);
        assert!(!ids(&all.body["results"]).contains(&id));
    }
}

mod index_lag {
    use super::*;

    async fn visible_status(api: &Api, id: u64) -> Option<String> {
        let reply = api
            .search(json!({
                "filterGroups": [{"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": id.to_string()}]}],
                "properties": ["hs_lead_status"]
            }))
            .await;
        reply.body["results"][0]["properties"]["hs_lead_status"]
            .as_str()
            .map(str::to_string)
    }

    #[tokio::test]
    async fn edits_reach_search_after_the_configured_number_of_requests() {
        let api = Api::with(HubSpotSandboxConfig {
            contacts: 10,
            search_lag_requests: 3,
            ..HubSpotSandboxConfig::default()
        })
        .await;
        let id = HubSpotSandbox::contact_id(1);
        let before = visible_status(&api, id).await;
        api.sandbox
            .edit_contact(id, &[("hs_lead_status", "CONNECTED")])
            .unwrap();
        // Reads see the edit at once.
        let read = api
            .get(&format!(
                "/crm/v3/objects/contacts/{id}?properties=hs_lead_status"
            ))
            .await;
        assert_eq!(read.body["properties"]["hs_lead_status"], "CONNECTED");
        // That read was request 1 after the edit; searches 2 still see the old value.
        assert_eq!(visible_status(&api, id).await, before);
        assert_eq!(visible_status(&api, id).await.as_deref(), Some("CONNECTED"));
    }

    #[tokio::test]
    async fn sandbox_time_lag_hides_edits_until_the_clock_moves() {
        let api = Api::with(HubSpotSandboxConfig {
            contacts: 10,
            faults: FaultConfig {
                search_index_lag: Duration::from_secs(30),
                ..FaultConfig::default()
            },
            ..HubSpotSandboxConfig::default()
        })
        .await;
        // The knob is read per request; one request makes the sandbox pick it up.
        assert_eq!(
            api.get("/crm/v3/objects/contacts?limit=1").await.status,
            200
        );
        let created = api
            .sandbox
            .create_contact(&[("firstname", "Late")])
            .unwrap();
        let find = json!({"filterGroups": [{"filters": [
            {"propertyName": "firstname", "operator": "EQ", "value": "late"}]}]});
        assert_eq!(api.search(find.clone()).await.body["total"], 0);
        // The lag runs on the sandbox clock (real time plus what the test adds): 20 s added
        // is not 30 s, whatever the few real milliseconds this test takes.
        api.sandbox.advance_clock(Duration::from_secs(20));
        assert_eq!(api.search(find.clone()).await.body["total"], 0);
        api.sandbox.advance_clock(Duration::from_secs(10));
        assert_eq!(ids(&api.search(find).await.body["results"]), [created]);
    }
}

mod batch {
    use super::*;

    #[tokio::test]
    async fn more_than_100_inputs_is_a_400() {
        let api = Api::start(5).await;
        let inputs: Vec<Value> = (0..101).map(|i| json!({"id": i.to_string()})).collect();
        for op in ["read", "update", "upsert", "create", "archive"] {
            let reply = api
                .post(
                    &format!("/crm/v3/objects/contacts/batch/{op}"),
                    json!({"inputs": inputs}),
                )
                .await;
            assert_envelope(&reply, 400, "VALIDATION_ERROR");
        }
    }

    #[tokio::test]
    async fn update_reports_partial_failures_with_207_and_applies_the_rest() {
        let api = Api::start(10).await;
        let (a, b, c) = (
            HubSpotSandbox::contact_id(0),
            HubSpotSandbox::contact_id(1),
            HubSpotSandbox::contact_id(2),
        );
        let before = api.sandbox.now_ms();
        let reply = api
            .post(
                "/crm/v3/objects/contacts/batch/update",
                json!({"inputs": [
                    {"id": a.to_string(), "properties": {"notes": "called twice", "hs_lead_status": "QUALIFIED"}},
                    {"id": b.to_string(), "properties": {"hs_lead_status": "MAYBE"}},
                    {"id": c.to_string(), "properties": {"favourite_colour": "teal"}},
                    {"id": "424242", "properties": {"notes": "x"}}
                ]}),
            )
            .await;
        assert_eq!(reply.status, 207, "{}", reply.body);
        assert_eq!(reply.body["status"], "COMPLETE");
        assert_eq!(reply.body["numErrors"], 3);
        assert_eq!(ids(&reply.body["results"]), [a]);
        let errors = reply.body["errors"].as_array().unwrap();
        let by_category = |category: &str| -> Vec<&Value> {
            errors
                .iter()
                .filter(|e| e["category"] == category)
                .collect()
        };
        assert_eq!(
            by_category("OBJECT_NOT_FOUND")[0]["context"]["ids"],
            json!(["424242"])
        );
        let invalid = by_category("VALIDATION_ERROR");
        let codes: BTreeMap<String, String> = invalid
            .iter()
            .map(|e| {
                (
                    e["id"].as_str().unwrap().to_string(),
                    e["errors"][0]["code"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(codes[&b.to_string()], "INVALID_OPTION");
        assert_eq!(codes[&c.to_string()], "PROPERTY_DOESNT_EXIST");
        // The good input was applied and bumped lastmodifieddate on the sandbox clock.
        assert_eq!(
            api.sandbox.contact_property(a, "notes").as_deref(),
            Some("called twice")
        );
        let modified = reply.body["results"][0]["properties"]["lastmodifieddate"]
            .as_str()
            .unwrap();
        let modified = chrono::DateTime::parse_from_rfc3339(modified)
            .unwrap()
            .timestamp_millis();
        assert!(modified >= before);
        assert_ne!(
            api.sandbox.contact_property(b, "hs_lead_status").as_deref(),
            Some("MAYBE")
        );
        // A clean batch answers 200.
        let clean = api
            .post(
                "/crm/v3/objects/contacts/batch/update",
                json!({"inputs": [{"id": b.to_string(), "properties": {"notes": "ok"}}]}),
            )
            .await;
        assert_eq!(clean.status, 200);
        assert!(clean.body.get("errors").is_none());
    }

    #[tokio::test]
    async fn read_and_upsert_by_email() {
        let api = Api::start(10).await;
        let a = HubSpotSandbox::contact_id(0);
        let read = api
            .post(
                "/crm/v3/objects/contacts/batch/read",
                json!({"properties": ["phone"], "inputs": [{"id": a.to_string()}, {"id": "31337"}]}),
            )
            .await;
        assert_eq!(read.status, 207);
        assert_eq!(ids(&read.body["results"]), [a]);
        assert_eq!(read.body["errors"][0]["category"], "OBJECT_NOT_FOUND");

        let upsert = |email: &str, status: &str| json!({"inputs": [{"id": email, "idProperty": "email", "properties": {"hs_lead_status": status}}]});
        let first = api
            .post(
                "/crm/v3/objects/contacts/batch/upsert",
                upsert("new@lead.test", "NEW"),
            )
            .await;
        assert_eq!(first.status, 200, "{}", first.body);
        assert_eq!(first.body["results"][0]["new"], true);
        let id = ids(&first.body["results"])[0];
        let second = api
            .post(
                "/crm/v3/objects/contacts/batch/upsert",
                upsert("NEW@lead.test", "OPEN"),
            )
            .await;
        assert_eq!(second.body["results"][0]["new"], false);
        assert_eq!(ids(&second.body["results"]), [id]);
        assert_eq!(
            api.sandbox
                .contact_property(id, "hs_lead_status")
                .as_deref(),
            Some("OPEN")
        );
        let by_email = api
            .post(
                "/crm/v3/objects/contacts/batch/read",
                json!({"idProperty": "email", "inputs": [{"id": "new@lead.test"}]}),
            )
            .await;
        assert_eq!(ids(&by_email.body["results"]), [id]);
    }
}

/// Per-property modification times as `propertiesWithHistory`, and a property cleared to "".
mod history {
    use super::*;

    #[tokio::test]
    async fn each_property_has_its_own_time_and_a_cleared_one_reads_empty() {
        let api = Api::start(10).await;
        let id = HubSpotSandbox::contact_id(0);
        let path = format!(
            "/crm/v3/objects/contacts/{id}?properties=notes,firstname,jobtitle&propertiesWithHistory=notes,firstname,jobtitle"
        );
        let seeded = api.get(&path).await;
        assert_eq!(seeded.status, 200);
        let created = &seeded.body["createdAt"];
        // A seeded value dates from the record's creation.
        assert_eq!(
            seeded.body["propertiesWithHistory"]["firstname"][0]["timestamp"],
            *created
        );
        let before = api.sandbox.now_ms();
        api.sandbox.edit_contact(id, &[("notes", "first")]).unwrap();
        api.sandbox.advance_clock(Duration::from_secs(60));
        api.sandbox
            .edit_contact(id, &[("jobtitle", "CTO")])
            .unwrap();
        // Writing the same value again moves nothing.
        api.sandbox.edit_contact(id, &[("notes", "first")]).unwrap();
        let read = api.get(&path).await;
        let history = &read.body["propertiesWithHistory"];
        let at = |name: &str| {
            let text = history[name][0]["timestamp"].as_str().unwrap();
            chrono::DateTime::parse_from_rfc3339(text)
                .unwrap()
                .timestamp_millis()
        };
        assert_eq!(history["notes"][0]["value"], "first");
        assert!(
            at("notes") >= before && at("notes") < before + 60_000,
            "{history}"
        );
        assert!(at("jobtitle") >= at("notes") + 60_000, "{history}");
        // The record's own time is the latest write's.
        assert_eq!(
            read.body["updatedAt"], history["jobtitle"][0]["timestamp"],
            "{}",
            read.body
        );
        assert_eq!(history["firstname"][0]["timestamp"], *created);
        assert_eq!(history["notes"][0]["sourceType"], "API");

        // Cleared as HubSpot's UI clears it: "" (not null), with the clear's time.
        api.sandbox.edit_contact(id, &[("notes", "")]).unwrap();
        let cleared = api.get(&path).await;
        assert_eq!(cleared.body["properties"]["notes"], "");
        assert_eq!(
            cleared.body["propertiesWithHistory"]["notes"][0]["value"],
            ""
        );
        // A property never set is null, with no versions.
        let other = HubSpotSandbox::contact_id(1);
        let never = api
            .post(
                "/crm/v3/objects/contacts/batch/read",
                json!({"properties": ["fax"], "propertiesWithHistory": ["fax", "notes"],
                       "inputs": [{"id": other.to_string()}, {"id": id.to_string()}]}),
            )
            .await;
        assert_eq!(never.status, 200, "{}", never.body);
        let results = never.body["results"].as_array().unwrap();
        let of = |wanted: u64| {
            results
                .iter()
                .find(|r| r["id"].as_str().and_then(|s| s.parse::<u64>().ok()) == Some(wanted))
                .unwrap()
        };
        assert_eq!(of(other)["properties"]["fax"], Value::Null);
        assert_eq!(of(other)["propertiesWithHistory"]["fax"], json!([]));
        assert_eq!(of(id)["propertiesWithHistory"]["notes"][0]["value"], "");
        // The list takes the parameter too.
        let list = api
            .get("/crm/v3/objects/contacts?limit=1&propertiesWithHistory=firstname")
            .await;
        assert!(list.body["results"][0]["propertiesWithHistory"]["firstname"].is_array());
    }
}

mod properties {
    use super::*;

    #[tokio::test]
    async fn contact_properties_have_types_and_options() {
        let api = Api::start(1).await;
        let reply = api.get("/crm/v3/properties/contacts").await;
        assert_eq!(reply.status, 200);
        assert!(reply.body.get("paging").is_none());
        let by_name: BTreeMap<String, Value> = reply.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].as_str().unwrap().to_string(), p.clone()))
            .collect();
        for name in [
            "phone",
            "mobilephone",
            "firstname",
            "lastname",
            "email",
            "hs_lead_status",
            "notes",
            "lastmodifieddate",
            "hs_object_id",
            "createdate",
        ] {
            let property = &by_name[name];
            for key in [
                "label",
                "type",
                "fieldType",
                "groupName",
                "description",
                "options",
            ] {
                assert!(property.get(key).is_some(), "{name} lacks {key}");
            }
        }
        let status = &by_name["hs_lead_status"];
        assert_eq!(
            (status["type"].as_str(), status["fieldType"].as_str()),
            (Some("enumeration"), Some("select"))
        );
        let options: Vec<&str> = status["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["value"].as_str().unwrap())
            .collect();
        assert_eq!(
            options,
            [
                "NEW",
                "OPEN",
                "IN_PROGRESS",
                "OPEN_DEAL",
                "UNQUALIFIED",
                "ATTEMPTED_TO_CONTACT",
                "CONNECTED",
                "BAD_TIMING",
                "QUALIFIED"
            ]
        );
        assert_eq!(by_name["notes"]["fieldType"], "textarea");
        assert_eq!(by_name["notes"]["hubspotDefined"], false);
        assert_eq!(by_name["lastmodifieddate"]["type"], "datetime");
        assert_eq!(
            by_name["lastmodifieddate"]["modificationMetadata"]["readOnlyValue"],
            true
        );
        assert_eq!(by_name["email"]["hasUniqueValue"], true);
        let one = api.get("/crm/v3/properties/calls/hs_call_duration").await;
        assert_eq!(one.body["type"], "number");
        assert_envelope(
            &api.get("/crm/v3/properties/contacts/nope").await,
            404,
            "OBJECT_NOT_FOUND",
        );
    }
}

mod activities {
    use super::*;

    fn call_input(contact: u64, title: &str, type_id: Value) -> Value {
        json!({
            "properties": {
                "hs_timestamp": "2026-01-01T10:00:00.000Z",
                "hs_call_title": title,
                "hs_call_body": "Summary",
                "hs_call_status": "COMPLETED",
                "hs_call_duration": "65000",
                "hs_call_direction": "OUTBOUND",
                "hs_call_from_number": "+14155550100",
                "hs_call_to_number": "(415) 555-0199"
            },
            "associations": [{"to": {"id": contact.to_string()},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}]
        })
    }

    #[tokio::test]
    async fn calls_are_created_associated_and_found_again() {
        let api = Api::start(5).await;
        let contact = HubSpotSandbox::contact_id(1);
        let created = api
            .post(
                "/crm/v3/objects/calls",
                call_input(contact, "Call c1", json!(194)),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        assert_eq!(created.body["properties"]["hs_call_duration"], "65000");
        let call_id = ids(&json!([created.body]))[0];

        // The contact's calls, consistent at once (v4 read from the contact side, type 193).
        let linked = api
            .get(&format!(
                "/crm/v4/objects/contacts/{contact}/associations/calls"
            ))
            .await;
        assert_eq!(linked.body["results"][0]["toObjectId"], call_id);
        assert_eq!(
            linked.body["results"][0]["associationTypes"][0]["typeId"],
            193
        );
        // Search by title: the documented way to look an activity up before resending it.
        let found = api
            .post(
                "/crm/v3/objects/calls/search",
                json!({"filterGroups": [{"filters": [
                    {"propertyName": "hs_call_title", "operator": "EQ", "value": "Call c1"},
                    {"propertyName": "associations.contact", "operator": "EQ", "value": contact.to_string()}]}],
                    "properties": ["hs_call_title"]}),
            )
            .await;
        assert_eq!(ids(&found.body["results"]), [call_id]);
        let read = api
            .get(&format!(
                "/crm/v3/objects/calls/{call_id}?associations=contacts"
            ))
            .await;
        assert_eq!(
            read.body["associations"]["contacts"]["results"][0],
            json!({"id": contact.to_string(), "type": "call_to_contact"})
        );

        let calls = api.sandbox.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].contact_ids, [contact]);
        assert_eq!(calls[0].properties["hs_call_status"], "COMPLETED");
    }

    #[tokio::test]
    async fn bad_associations_and_missing_timestamps_are_refused() {
        let api = Api::start(5).await;
        let contact = HubSpotSandbox::contact_id(1);
        let wrong_type = api
            .post("/crm/v3/objects/calls", call_input(contact, "x", json!(81)))
            .await;
        assert_envelope(&wrong_type, 400, "VALIDATION_ERROR");
        let no_contact = api
            .post("/crm/v3/objects/calls", call_input(5, "x", json!(194)))
            .await;
        assert_envelope(&no_contact, 400, "VALIDATION_ERROR");
        let no_time = api
            .post(
                "/crm/v3/objects/calls",
                json!({"properties": {"hs_call_title": "x"}}),
            )
            .await;
        assert_envelope(&no_time, 400, "VALIDATION_ERROR");
        assert!(api.sandbox.calls().is_empty());
    }

    #[tokio::test]
    async fn batch_create_with_trace_ids_reports_per_input_and_without_is_all_or_nothing() {
        let api = Api::start(5).await;
        let contact = HubSpotSandbox::contact_id(2);
        let mut good = call_input(contact, "Call a", json!(194));
        good["objectWriteTraceId"] = json!("a");
        let mut bad = call_input(contact, "Call b", json!(194));
        bad["properties"]["hs_call_status"] = json!("PERHAPS");
        bad["objectWriteTraceId"] = json!("b");
        let traced = api
            .post(
                "/crm/v3/objects/calls/batch/create",
                json!({"inputs": [good, bad.clone()]}),
            )
            .await;
        assert_eq!(traced.status, 207, "{}", traced.body);
        assert_eq!(traced.body["results"][0]["objectWriteTraceId"], "a");
        assert_eq!(
            traced.body["errors"][0]["context"]["objectWriteTraceId"],
            json!(["b"])
        );
        assert_eq!(api.sandbox.calls().len(), 1);

        let plain = call_input(contact, "Call c", json!(194));
        bad.as_object_mut().unwrap().remove("objectWriteTraceId");
        let untraced = api
            .post(
                "/crm/v3/objects/calls/batch/create",
                json!({"inputs": [plain, bad]}),
            )
            .await;
        assert_envelope(&untraced, 400, "VALIDATION_ERROR");
        assert_eq!(api.sandbox.calls().len(), 1, "nothing created");
    }

    #[tokio::test]
    async fn communications_log_sms_associated_with_type_81() {
        let api = Api::start(5).await;
        let contact = HubSpotSandbox::contact_id(3);
        let input = |body: &str, logged_from: &str| {
            json!({
                "properties": {
                    "hs_communication_channel_type": "SMS",
                    "hs_communication_logged_from": logged_from,
                    "hs_communication_body": body,
                    "hs_timestamp": "1767261600000"
                },
                "associations": [{"to": {"id": contact},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 81}]}]
            })
        };
        let single = api
            .post("/crm/v3/objects/communications", input("chat one", "CRM"))
            .await;
        assert_eq!(single.status, 201, "{}", single.body);
        assert_eq!(
            single.body["properties"]["hs_timestamp"],
            "2026-01-01T10:00:00.000Z"
        );
        let batch = api
            .post(
                "/crm/v3/objects/communications/batch/create",
                json!({"inputs": [input("chat two", "CRM")]}),
            )
            .await;
        assert_eq!(batch.status, 201, "{}", batch.body);
        let wrong = api
            .post("/crm/v3/objects/communications", input("x", "INTEGRATION"))
            .await;
        assert_envelope(&wrong, 400, "VALIDATION_ERROR");
        let logged = api.sandbox.communications();
        let bodies: Vec<&str> = logged
            .iter()
            .map(|c| c.properties["hs_communication_body"].as_str())
            .collect();
        assert_eq!(bodies, ["chat one", "chat two"]);
        assert!(logged.iter().all(|c| c.contact_ids == [contact]));
        let linked = api
            .get(&format!(
                "/crm/v4/objects/contacts/{contact}/associations/communications"
            ))
            .await;
        assert_eq!(linked.body["results"].as_array().unwrap().len(), 2);
        assert_eq!(
            linked.body["results"][0]["associationTypes"][0]["typeId"],
            82
        );
    }
}

mod archived {
    use super::*;

    #[tokio::test]
    async fn deleted_contacts_list_as_archived_and_read_404() {
        let api = Api::start(10).await;
        let id = HubSpotSandbox::contact_id(5);
        let before = api.sandbox.now_ms();
        let deleted = api
            .call(
                Method::DELETE,
                &format!("/crm/v3/objects/contacts/{id}"),
                None,
            )
            .await;
        assert_eq!(deleted.status, 204);
        let archived = api.get("/crm/v3/objects/contacts?archived=true").await;
        assert_eq!(ids(&archived.body["results"]), [id]);
        let record = &archived.body["results"][0];
        assert_eq!(record["archived"], true);
        let at = record["archivedAt"].as_str().unwrap();
        let at = chrono::DateTime::parse_from_rfc3339(at)
            .unwrap()
            .timestamp_millis();
        // Stamped by the sandbox clock (the real time) when the request was served.
        assert!(at >= before && at <= api.sandbox.now_ms(), "{at}");
        let live = api.get("/crm/v3/objects/contacts?limit=100").await;
        assert_eq!(live.body["results"].as_array().unwrap().len(), 9);
        assert_envelope(
            &api.get(&format!("/crm/v3/objects/contacts/{id}")).await,
            404,
            "OBJECT_NOT_FOUND",
        );
        let with_flag = api
            .get(&format!("/crm/v3/objects/contacts/{id}?archived=true"))
            .await;
        assert_eq!(with_flag.status, 200);
    }

    #[tokio::test]
    async fn merged_contacts_resolve_to_the_primary() {
        let api = Api::start(10).await;
        let (primary, loser) = (HubSpotSandbox::contact_id(1), HubSpotSandbox::contact_id(2));
        let merged = api
            .post(
                "/crm/v3/objects/contacts/merge",
                json!({"primaryObjectId": primary.to_string(), "objectIdToMerge": loser.to_string()}),
            )
            .await;
        assert_eq!(merged.status, 200, "{}", merged.body);
        assert_eq!(
            merged.body["properties"]["hs_merged_object_ids"],
            loser.to_string()
        );
        let read = api.get(&format!("/crm/v3/objects/contacts/{loser}")).await;
        assert_eq!(read.body["id"], primary.to_string());
        let listed: HashSet<u64> =
            ids(&api.get("/crm/v3/objects/contacts?limit=100").await.body["results"])
                .into_iter()
                .collect();
        assert!(!listed.contains(&loser) && listed.contains(&primary));
    }
}

mod rate_limits {
    use super::*;

    fn header(reply: &Reply, name: &str) -> Option<String> {
        reply
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    #[tokio::test]
    async fn responses_carry_budget_headers_and_the_burst_budget_is_enforced() {
        let api = Api::start(5).await;
        api.sandbox.set_burst_limit(3);
        let first = api.get("/crm/v3/objects/contacts").await;
        assert_eq!(
            header(&first, "x-hubspot-ratelimit-max").as_deref(),
            Some("3")
        );
        assert_eq!(
            header(&first, "x-hubspot-ratelimit-remaining").as_deref(),
            Some("2")
        );
        assert_eq!(
            header(&first, "x-hubspot-ratelimit-interval-milliseconds").as_deref(),
            Some("10000")
        );
        assert_eq!(
            header(&first, "x-hubspot-ratelimit-daily").as_deref(),
            Some("1000000")
        );
        assert_eq!(
            header(&first, "x-hubspot-ratelimit-daily-remaining").as_deref(),
            Some("999999")
        );
        api.get("/crm/v3/objects/contacts").await;
        api.get("/crm/v3/objects/contacts").await;
        let refused = api.get("/crm/v3/objects/contacts").await;
        assert_eq!(refused.status, 429);
        assert_eq!(refused.body["errorType"], "RATE_LIMIT");
        assert_eq!(refused.body["policyName"], "TEN_SECONDLY_ROLLING");
        assert!(is_uuid(&refused.body["correlationId"]));
        assert_eq!(
            header(&refused, "x-hubspot-ratelimit-remaining").as_deref(),
            Some("0")
        );
        assert_eq!(
            api.sandbox.counters().get_status("hs.contacts.list", 429),
            1
        );
    }

    #[tokio::test]
    async fn injected_throttles_and_the_daily_limit() {
        let api = Api::with(HubSpotSandboxConfig {
            contacts: 5,
            faults: FaultConfig {
                throttle_fraction: 1.0,
                ..FaultConfig::default()
            },
            ..HubSpotSandboxConfig::default()
        })
        .await;
        let list = api.get("/crm/v3/objects/contacts").await;
        assert_eq!(list.status, 429);
        assert_eq!(list.body["policyName"], "TEN_SECONDLY_ROLLING");
        assert!(list.headers.contains_key("x-hubspot-ratelimit-max"));
        let search = api.search(json!({})).await;
        assert_eq!(search.status, 429);
        assert_eq!(
            search.body["message"],
            "You have reached your secondly limit."
        );

        api.sandbox.faults().update(|f| {
            f.throttle_fraction = 0.0;
            f.daily_api_limit = 1;
        });
        assert_eq!(api.get("/crm/v3/objects/contacts").await.status, 200);
        let daily = api.get("/crm/v3/objects/contacts").await;
        assert_eq!(daily.status, 429);
        assert_eq!(daily.body["policyName"], "DAILY");
        assert_eq!(daily.body["message"], "You have reached your daily limit.");
    }

    #[tokio::test]
    async fn the_search_budget_is_separate() {
        let api = Api::start(5).await;
        api.sandbox.set_search_per_second(1);
        api.sandbox.set_burst_limit(1000);
        let statuses = [
            api.search(json!({})).await.status.as_u16(),
            api.search(json!({})).await.status.as_u16(),
        ];
        // Two searches in well under a second: the second is refused (unless the machine
        // stalled for a second between them, which would make both succeed).
        assert!(
            statuses == [200, 429] || statuses == [200, 200],
            "{statuses:?}"
        );
        assert_eq!(api.get("/crm/v3/objects/contacts").await.status, 200);
    }
}

mod faults {
    use super::*;

    #[tokio::test]
    async fn injected_server_errors_use_the_envelope() {
        let api = Api::with(HubSpotSandboxConfig {
            contacts: 5,
            faults: FaultConfig {
                server_error_fraction: 1.0,
                ..FaultConfig::default()
            },
            ..HubSpotSandboxConfig::default()
        })
        .await;
        let reply = api.get("/crm/v3/objects/contacts").await;
        assert!(
            matches!(reply.status.as_u16(), 500 | 503),
            "{}",
            reply.status
        );
        assert_eq!(reply.body["category"], "INTERNAL_ERROR");
        assert!(is_uuid(&reply.body["correlationId"]));
    }

    #[tokio::test]
    async fn a_held_write_is_applied_though_the_client_times_out() {
        let api = Api::start(5).await;
        let contact = HubSpotSandbox::contact_id(0);
        let next = api.sandbox.faults().requests_seen() + 1;
        api.sandbox.faults().update(|f| {
            f.hold_requests.insert(next, HoldWhen::AfterProcessing);
            f.hold_duration = Duration::from_secs(30);
        });
        let impatient = reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let sent = impatient
            .post(format!("{}/crm/v3/objects/calls", api.sandbox.base_url()))
            .bearer_auth(api.sandbox.token())
            .json(&json!({
                "properties": {"hs_timestamp": "2026-01-01T00:00:00Z", "hs_call_title": "Call held"},
                "associations": [{"to": {"id": contact}, "types": [{"associationTypeId": 194}]}]
            }))
            .send()
            .await;
        assert!(sent.unwrap_err().is_timeout());
        let calls = api.sandbox.calls();
        assert_eq!(calls.len(), 1, "applied before the response was held");
        assert_eq!(calls[0].properties["hs_call_title"], "Call held");
        assert_eq!(calls[0].contact_ids, [contact]);
    }
}

mod held_before {
    use super::*;

    #[tokio::test]
    async fn a_request_held_before_processing_answers_503_and_changes_nothing() {
        let api = Api::start(5).await;
        let contact = HubSpotSandbox::contact_id(0);
        let next = api.sandbox.faults().requests_seen() + 1;
        api.sandbox.faults().update(|f| {
            f.hold_requests.insert(next, HoldWhen::BeforeProcessing);
            f.hold_duration = Duration::from_millis(50);
        });
        let reply = api
            .post(
                "/crm/v3/objects/calls",
                json!({"properties": {"hs_timestamp": "2026-01-01T00:00:00Z"},
                       "associations": [{"to": {"id": contact}, "types": [{"associationTypeId": 194}]}]}),
            )
            .await;
        assert_envelope(&reply, 503, "INTERNAL_ERROR");
        assert!(api.sandbox.calls().is_empty());
        assert_eq!(api.sandbox.counters().get_status("hs.calls.create", 503), 1);
    }
}

mod counters {
    use super::*;

    #[tokio::test]
    async fn requests_are_counted_by_endpoint_and_status() {
        let api = Api::start(5).await;
        api.get("/crm/v3/objects/contacts").await;
        api.search(json!({})).await;
        api.search(json!({"limit": 500})).await;
        api.get("/crm/v3/properties/contacts").await;
        api.post("/crm/v3/objects/contacts/batch/read", json!({"inputs": []}))
            .await;
        let counters = api.sandbox.counters();
        assert_eq!(counters.get("hs.contacts.list"), 1);
        assert_eq!(counters.get("hs.contacts.search"), 2);
        assert_eq!(counters.get_status("hs.contacts.search", 400), 1);
        assert_eq!(counters.get("hs.properties.contacts"), 1);
        assert_eq!(counters.get("hs.contacts.batch_read"), 1);
        assert_eq!(counters.total(), 5);
        assert_eq!(api.sandbox.faults().requests_seen(), 5);
    }
}
