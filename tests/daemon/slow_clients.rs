//! Slow and stuck clients: a request head or body that never finishes arriving, connections
//! over the cap, and a shutdown while a client holds a half-sent request. Real TCP clients on
//! loopback write partial requests by hand, since those are the request shapes under test.

use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::harness::{closed_by_server, read_response, Setup, TestDaemon};
use crmsync::daemon::serve::{Limits, Stopped};

/// Generous upper bound for anything the server is expected to do; only a failure takes it.
const BOUND: Duration = Duration::from_secs(30);
/// A request head cut before its blank line.
const HALF_SENT: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n";

async fn daemon(limits: Limits) -> TestDaemon {
    TestDaemon::start_with(Setup {
        limits,
        ..Setup::default()
    })
    .await
}

async fn connect(t: &TestDaemon) -> TcpStream {
    TcpStream::connect(t.daemon.addr()).await.unwrap()
}

/// A full `GET /healthz` on a raw connection, kept open afterwards.
async fn healthz(stream: &mut TcpStream) -> Option<(u16, String)> {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .ok()?;
    read_response(stream).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_heads_are_closed_and_the_daemon_keeps_serving() {
    let t = daemon(Limits {
        header_read_timeout: Duration::from_millis(500),
        ..Limits::DEFAULT
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..300 {
        let mut stream = connect(&t).await;
        stream.write_all(HALF_SENT).await.unwrap();
        held.push(stream);
    }
    // Others are served meanwhile.
    let response = t.http.get(t.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    // Every half-sent request's connection is closed by the server.
    for stream in &mut held {
        closed_by_server(stream, BOUND).await;
    }
    // A connection that sends nothing at all is closed too.
    let mut silent = connect(&t).await;
    closed_by_server(&mut silent, BOUND).await;
    t.daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_past_its_deadline_gets_408() {
    let t = daemon(Limits {
        body_read_timeout: Duration::from_millis(500),
        ..Limits::DEFAULT
    })
    .await;
    let mut stream = connect(&t).await;
    let head = format!(
        "POST /v1/conversations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{{",
        crate::harness::TOKEN
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // One byte every 20 ms keeps the body moving (a deadline between reads would never trip)
    // while the answer is awaited; 60,000 bytes would take 20 minutes.
    let trickle = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            if writer.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let response = tokio::time::timeout(BOUND, async {
        use tokio::io::AsyncReadExt;
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        String::from_utf8_lossy(&buffer).into_owned()
    })
    .await
    .expect("the server answers and closes before the body is complete");
    trickle.abort();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("");
    let body: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{response}"));
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");
    assert_eq!(t.engine.store().contact_count().unwrap(), 0);
    t.daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_get_503_until_one_closes() {
    let t = daemon(Limits {
        max_connections: 2,
        header_read_timeout: Duration::from_secs(600),
        ..Limits::DEFAULT
    })
    .await;
    // Two keep-alive connections, each served once and left open.
    let mut first = connect(&t).await;
    let mut second = connect(&t).await;
    for stream in [&mut first, &mut second] {
        assert_eq!(healthz(stream).await.map(|r| r.0), Some(200));
    }
    let mut third = connect(&t).await;
    let (status, body) = healthz(&mut third).await.expect("an answer");
    assert_eq!(status, 503, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server.max_connections is 2"),
        "{body}"
    );
    closed_by_server(&mut third, BOUND).await;

    // Once a held connection closes, its place is free again.
    drop(first);
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let mut next = connect(&t).await;
        if healthz(&mut next).await.map(|r| r.0) == Some(200) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the freed place is never reused"
        );
    }
    t.daemon.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_a_half_sent_request_ends_at_its_deadline() {
    let t = daemon(Limits {
        header_read_timeout: Duration::from_secs(600),
        shutdown_timeout: Duration::from_millis(300),
        ..Limits::DEFAULT
    })
    .await;
    // The connection's first request: a shutdown closes a connection waiting for its next
    // request at once, as idle.
    let mut stream = connect(&t).await;
    stream.write_all(HALF_SENT).await.unwrap();
    // A round trip on another connection, so the server has surely read the half-sent head.
    let response = t.http.get(t.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let stopped = tokio::time::timeout(BOUND, t.daemon.shutdown())
        .await
        .expect("the shutdown ends")
        .unwrap();
    assert_eq!(
        stopped,
        Stopped {
            connections_cut: 1,
            background_cut: false
        }
    );
    // Closed without an answer.
    assert_eq!(read_response(&mut stream).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_does_not_hold_up_the_shutdown() {
    let t = daemon(Limits {
        header_read_timeout: Duration::from_secs(600),
        shutdown_timeout: Duration::from_secs(600),
        ..Limits::DEFAULT
    })
    .await;
    let mut stream = connect(&t).await;
    assert_eq!(healthz(&mut stream).await.map(|r| r.0), Some(200));
    let stopped = tokio::time::timeout(BOUND, t.daemon.shutdown())
        .await
        .expect("the shutdown ends")
        .unwrap();
    assert!(stopped.clean(), "{stopped:?}");
    closed_by_server(&mut stream, BOUND).await;
}
