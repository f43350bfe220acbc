//! The `merge` mode's mergers against a loopback OpenAI-compatible chat-completions server:
//! success, HTTP errors, malformed and empty answers, timeouts, missing keys, and the fallback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use crmsync::merge::{
    merge_blocking, merger_for, FallbackMerger, LlmConfig, LlmMerger, MergeError, MergeOutcome,
    MergeRequest, MergeVia, Merger, MAX_MERGED_CHARS,
};
use serde_json::{json, Value};

/// What the fake endpoint answers.
#[derive(Clone)]
enum Reply {
    /// 200 with this JSON body.
    Json(Value),
    /// This status with this body.
    Status(StatusCode, &'static str),
    /// 200 with this (not necessarily JSON) body.
    Raw(&'static str),
    /// Never answers: the client's timeout is what ends the request.
    Hang,
}

/// One request the fake endpoint received.
#[derive(Debug, Clone)]
struct Seen {
    authorization: Option<String>,
    body: Value,
}

#[derive(Clone)]
struct FakeLlm {
    reply: Reply,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn chat_completions(
    State(fake): State<FakeLlm>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    fake.seen.lock().unwrap().push(Seen {
        authorization,
        body,
    });
    match fake.reply {
        Reply::Json(value) => axum::Json(value).into_response(),
        Reply::Status(status, body) => (status, body).into_response(),
        Reply::Raw(body) => (StatusCode::OK, body).into_response(),
        Reply::Hang => std::future::pending().await,
    }
}

/// Starts the fake endpoint on 127.0.0.1:0; returns its base URL (with `/v1`) and the log of
/// requests it received.
async fn start(reply: Reply) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .with_state(FakeLlm {
            reply,
            seen: seen.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), seen)
}

fn config(base_url: &str, timeout_ms: u64) -> LlmConfig {
    LlmConfig {
        base_url: base_url.to_string(),
        model: "merge-model-1".to_string(),
        api_key_env: None,
        timeout_ms,
    }
}

fn request() -> MergeRequest {
    MergeRequest {
        field: "interaction_summary".to_string(),
        instruction: "Running notes from conversations. Keep the ten most recent points."
            .to_string(),
        old: "Asked about pricing.".to_string(),
        new: "Wants a demo next Tuesday.".to_string(),
    }
}

fn completion(content: Value) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "merge-model-1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    })
}

fn keeps_both() -> String {
    "Asked about pricing.\n\nWants a demo next Tuesday.".to_string()
}

/// Runs one merge with `reply` from the server and key `key`; returns the outcome and what the
/// server saw. A 10 s guard turns a hung client into a test failure instead of a hang.
async fn merge_with(reply: Reply, key: Option<&str>, timeout_ms: u64) -> (MergeOutcome, Vec<Seen>) {
    let (base_url, seen) = start(reply).await;
    let merger = LlmMerger::with_api_key(config(&base_url, timeout_ms), key.map(String::from));
    let req = request();
    let outcome = tokio::time::timeout(Duration::from_secs(10), merger.merge(&req))
        .await
        .expect("the merge must finish (client timeout or answer)");
    let seen = seen.lock().unwrap().clone();
    (outcome, seen)
}

fn fallback_reason(outcome: &MergeOutcome) -> &MergeError {
    match &outcome.via {
        MergeVia::Fallback { reason } => reason,
        other => panic!("expected a fallback, got {other:?}"),
    }
}

mod llm_merger {
    use super::*;

    #[tokio::test]
    async fn success_sends_a_chat_completion_request_and_returns_the_trimmed_answer() {
        let (outcome, seen) = merge_with(
            Reply::Json(completion(json!(
                "  Asked about pricing; wants a demo Tuesday.\n"
            ))),
            Some("test-key-123"),
            5_000,
        )
        .await;
        assert_eq!(
            outcome,
            MergeOutcome {
                text: "Asked about pricing; wants a demo Tuesday.".to_string(),
                via: MergeVia::Llm
            }
        );

        assert_eq!(seen.len(), 1);
        let sent = &seen[0];
        assert_eq!(sent.authorization.as_deref(), Some("Bearer test-key-123"));
        assert_eq!(sent.body["model"], "merge-model-1");
        assert_eq!(sent.body["max_tokens"], 512);
        let messages = sent.body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0]["role"], "system");
        let system = messages[0]["content"].as_str().unwrap();
        assert!(
            system.contains("Keep the ten most recent points."),
            "{system}"
        );
        assert!(system.contains("interaction_summary"), "{system}");
        assert_eq!(messages[1]["role"], "user");
        let user = messages[1]["content"].as_str().unwrap();
        assert!(user.contains("Asked about pricing."), "{user}");
        assert!(user.contains("Wants a demo next Tuesday."), "{user}");
    }

    #[tokio::test]
    async fn an_answer_over_the_length_limit_falls_back_instead_of_being_cut() {
        // Cutting it would drop the end of the field without a word.
        let long: String = "ü".repeat(MAX_MERGED_CHARS + 1);
        let (outcome, seen) = merge_with(Reply::Json(completion(json!(long))), None, 5_000).await;
        assert_eq!(seen.len(), 1);
        assert_eq!(outcome.text, keeps_both());
        assert_eq!(
            fallback_reason(&outcome),
            &MergeError::TooLong {
                chars: MAX_MERGED_CHARS + 1,
                max: MAX_MERGED_CHARS
            }
        );
        // Exactly at the limit is a whole answer.
        let full: String = "ü".repeat(MAX_MERGED_CHARS);
        let (outcome, _) = merge_with(Reply::Json(completion(json!(full))), None, 5_000).await;
        assert_eq!(outcome.via, MergeVia::Llm);
        assert_eq!(outcome.text, full);
    }

    #[tokio::test]
    async fn an_answer_cut_by_the_token_limit_falls_back_and_says_why() {
        for reason in ["length", "content_filter"] {
            let mut body = completion(json!("Asked about pricing; wants a"));
            body["choices"][0]["finish_reason"] = json!(reason);
            let (outcome, seen) = merge_with(Reply::Json(body), None, 5_000).await;
            assert_eq!(seen.len(), 1);
            assert_eq!(outcome.text, keeps_both(), "{reason}");
            assert_eq!(
                fallback_reason(&outcome),
                &MergeError::Truncated {
                    finish_reason: reason.to_string()
                }
            );
            assert!(
                fallback_reason(&outcome).to_string().contains(reason),
                "the reason names the finish_reason"
            );
        }
    }

    #[tokio::test]
    async fn an_answer_without_a_finish_reason_is_accepted() {
        let mut body = completion(json!("Merged."));
        body["choices"][0]
            .as_object_mut()
            .unwrap()
            .remove("finish_reason");
        let (outcome, _) = merge_with(Reply::Json(body), None, 5_000).await;
        assert_eq!(outcome.via, MergeVia::Llm);
        assert_eq!(outcome.text, "Merged.");
    }

    #[tokio::test]
    async fn a_failed_call_never_appends_what_the_field_already_says() {
        let (base_url, seen) = start(Reply::Status(StatusCode::BAD_GATEWAY, "down")).await;
        let merger = LlmMerger::with_api_key(config(&base_url, 5_000), None);
        // The new text restates the old field: nothing to append.
        let mut req = request();
        req.old = "Asked about pricing.\n\nWants a demo next Tuesday.".to_string();
        req.new = "Wants a demo  next\nTuesday.".to_string();
        let outcome = merger.merge(&req).await;
        assert_eq!(outcome.text, req.old);
        assert!(matches!(
            fallback_reason(&outcome),
            MergeError::Http { status: 502, .. }
        ));
        // Only the paragraph the field does not hold yet is appended.
        req.new = "Asked about pricing.\n\nBudget approved for Q1.".to_string();
        let outcome = merger.merge(&req).await;
        assert_eq!(
            outcome.text,
            "Asked about pricing.\n\nWants a demo next Tuesday.\n\nBudget approved for Q1."
        );
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn http_500_falls_back_with_the_status() {
        let (outcome, seen) = merge_with(
            Reply::Status(StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded"),
            Some("k"),
            5_000,
        )
        .await;
        assert_eq!(seen.len(), 1);
        assert_eq!(outcome.text, keeps_both());
        assert_eq!(
            fallback_reason(&outcome),
            &MergeError::Http {
                status: 500,
                body: "upstream exploded".to_string()
            }
        );
    }

    #[tokio::test]
    async fn http_429_falls_back_with_the_status() {
        let (outcome, _) = merge_with(
            Reply::Status(
                StatusCode::TOO_MANY_REQUESTS,
                r#"{"error":{"message":"Rate limit reached"}}"#,
            ),
            Some("k"),
            5_000,
        )
        .await;
        assert_eq!(outcome.text, keeps_both());
        match fallback_reason(&outcome) {
            MergeError::Http { status, body } => {
                assert_eq!(*status, 429);
                assert!(body.contains("Rate limit reached"), "{body}");
            }
            other => panic!("expected an HTTP error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn malformed_json_falls_back() {
        let (outcome, _) = merge_with(Reply::Raw("{\"choices\": [ nope"), None, 5_000).await;
        assert_eq!(outcome.text, keeps_both());
        assert!(
            matches!(fallback_reason(&outcome), MergeError::MalformedBody(_)),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn json_that_is_not_a_completion_falls_back() {
        let (outcome, _) = merge_with(Reply::Json(json!({"result": "merged"})), None, 5_000).await;
        assert_eq!(outcome.text, keeps_both());
        assert!(
            matches!(fallback_reason(&outcome), MergeError::MalformedBody(_)),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn empty_choices_or_empty_content_fall_back() {
        let empty_answers = [
            json!({"choices": []}),
            completion(json!("")),
            completion(json!("  \n\t ")),
            completion(Value::Null),
            // No message at all (a cut one with `length` is `Truncated`, tested below).
            json!({"choices": [{"index": 0, "finish_reason": "stop"}]}),
        ];
        for body in empty_answers {
            let (outcome, seen) = merge_with(Reply::Json(body.clone()), None, 5_000).await;
            assert_eq!(seen.len(), 1);
            assert_eq!(outcome.text, keeps_both(), "for {body}");
            assert_eq!(
                fallback_reason(&outcome),
                &MergeError::EmptyContent,
                "for {body}"
            );
        }
    }

    #[tokio::test]
    async fn a_server_that_never_answers_hits_the_client_timeout() {
        let (outcome, seen) = merge_with(Reply::Hang, Some("k"), 300).await;
        // The request reached the server: the client timeout, not a refused connection, ended it.
        assert_eq!(seen.len(), 1);
        assert_eq!(outcome.text, keeps_both());
        assert_eq!(
            fallback_reason(&outcome),
            &MergeError::Timeout { timeout_ms: 300 }
        );
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_falls_back_with_a_transport_error() {
        // Bind a port, then close it, so nothing listens there.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let merger =
            LlmMerger::with_api_key(config(&format!("http://127.0.0.1:{port}/v1"), 5_000), None);
        let outcome = merger.merge(&request()).await;
        assert_eq!(outcome.text, keeps_both());
        assert!(
            matches!(fallback_reason(&outcome), MergeError::Transport(_)),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn without_a_key_variable_no_authorization_header_is_sent() {
        let (outcome, seen) =
            merge_with(Reply::Json(completion(json!("merged"))), None, 5_000).await;
        assert_eq!(outcome.via, MergeVia::Llm);
        assert_eq!(seen[0].authorization, None);
    }

    #[tokio::test]
    async fn an_unset_key_variable_falls_back_without_calling_the_endpoint() {
        let (base_url, seen) = start(Reply::Json(completion(json!("merged")))).await;
        let mut cfg = config(&base_url, 5_000);
        cfg.api_key_env = Some("CRMSYNC_TEST_SURELY_UNSET_LLM_KEY".to_string());
        let merger = LlmMerger::from_config(cfg);
        let outcome = merger.merge(&request()).await;
        assert_eq!(outcome.text, keeps_both());
        assert_eq!(
            fallback_reason(&outcome),
            &MergeError::MissingApiKey {
                var: "CRMSYNC_TEST_SURELY_UNSET_LLM_KEY".to_string()
            }
        );
        assert!(seen.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_key_is_read_from_the_named_environment_variable() {
        // Cargo sets CARGO_PKG_NAME in the test process's environment; reading an existing
        // variable avoids `set_var`, which races with other test threads reading the env.
        let expected = std::env::var("CARGO_PKG_NAME").unwrap();
        let (base_url, seen) = start(Reply::Json(completion(json!("merged")))).await;
        let mut cfg = config(&base_url, 5_000);
        cfg.api_key_env = Some("CARGO_PKG_NAME".to_string());
        let outcome = LlmMerger::from_config(cfg).merge(&request()).await;
        assert_eq!(outcome.via, MergeVia::Llm);
        assert_eq!(
            seen.lock().unwrap()[0].authorization,
            Some(format!("Bearer {expected}"))
        );
    }

    #[tokio::test]
    async fn nothing_to_combine_needs_no_call() {
        let (base_url, seen) = start(Reply::Json(completion(json!("merged")))).await;
        let merger = LlmMerger::with_api_key(config(&base_url, 5_000), None);
        let mut req = request();
        req.old = "   ".to_string();
        let outcome = merger.merge(&req).await;
        assert_eq!(
            outcome,
            MergeOutcome {
                text: "Wants a demo next Tuesday.".to_string(),
                via: MergeVia::Trivial
            }
        );
        assert!(seen.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_trailing_slash_in_the_base_url_is_accepted() {
        let (base_url, seen) = start(Reply::Json(completion(json!("merged")))).await;
        let merger = LlmMerger::with_api_key(config(&format!("{base_url}/"), 5_000), None);
        assert_eq!(merger.merge(&request()).await.via, MergeVia::Llm);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
}

mod fallback_merger {
    use super::*;

    #[tokio::test]
    async fn keeps_old_a_blank_line_and_new() {
        let outcome = FallbackMerger.merge(&request()).await;
        assert_eq!(outcome.text, keeps_both());
        assert_eq!(fallback_reason(&outcome), &MergeError::NotConfigured);
    }

    #[tokio::test]
    async fn separates_by_exactly_one_blank_line() {
        let mut req = request();
        req.old = "first\n".to_string();
        req.new = "\nsecond".to_string();
        assert_eq!(FallbackMerger.merge(&req).await.text, "first\n\nsecond");
    }

    #[tokio::test]
    async fn text_the_field_already_contains_is_not_appended_again() {
        let mut req = request();
        req.old = "Asked about pricing. Wants a demo next Tuesday.".to_string();
        req.new = "Wants a demo".to_string();
        let outcome = FallbackMerger.merge(&req).await;
        assert_eq!(outcome.text, req.old);
        assert_eq!(fallback_reason(&outcome), &MergeError::NotConfigured);
        // Whole words only: "demo" is not in "demonstration", so it is appended.
        req.old = "Asked for a demonstration.".to_string();
        req.new = "demo".to_string();
        assert_eq!(
            FallbackMerger.merge(&req).await.text,
            "Asked for a demonstration.\n\ndemo"
        );
    }

    #[tokio::test]
    async fn an_empty_old_text_gives_just_the_new_text() {
        let mut req = request();
        req.old = String::new();
        let outcome = FallbackMerger.merge(&req).await;
        assert_eq!(outcome.text, "Wants a demo next Tuesday.");
        assert_eq!(outcome.via, MergeVia::Trivial);
    }

    #[tokio::test]
    async fn merger_for_picks_the_fallback_without_llm_config_and_the_llm_with_it() {
        let fallback = merger_for(None).merge(&request()).await;
        assert_eq!(fallback_reason(&fallback), &MergeError::NotConfigured);

        let (base_url, seen) = start(Reply::Json(completion(json!("merged")))).await;
        let cfg = config(&base_url, 5_000);
        let outcome = merger_for(Some(&cfg)).merge(&request()).await;
        assert_eq!(outcome.text, "merged");
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
}

mod blocking {
    use super::*;

    #[test]
    fn merge_blocking_runs_outside_a_runtime() {
        let outcome = merge_blocking(&FallbackMerger, &request());
        assert_eq!(outcome.text, keeps_both());
    }

    // Multi-threaded so the fake server keeps running while this test's thread blocks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn merge_blocking_works_from_inside_a_runtime() {
        let (base_url, seen) = start(Reply::Json(completion(json!("merged")))).await;
        let merger = LlmMerger::with_api_key(config(&base_url, 5_000), None);
        let outcome = merge_blocking(&merger, &request());
        assert_eq!(outcome.text, "merged");
        assert_eq!(outcome.via, MergeVia::Llm);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
}
