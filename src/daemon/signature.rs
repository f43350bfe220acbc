//! Retell webhook signatures: `x-retell-signature: v=<unix ms>,d=<hex digest>`.
//!
//! The digest is HMAC-SHA256 keyed with the Retell API key (the one with the webhook badge) over
//! the raw request body followed by the decimal timestamp, exactly as Retell's SDKs compute it
//! (`retell-python-sdk` `lib/webhook_auth.py`: `verifier(input_str + str(poststamp), digest)`).
//! A signature whose timestamp is more than five minutes away from our clock, in either
//! direction, is refused, so a captured request cannot be replayed later.
//!
//! Verification always runs over the bytes received, never a re-serialised JSON value: any
//! re-encoding (key order, spacing, escapes) would change the digest.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header Retell signs with.
pub const SIGNATURE_HEADER: &str = "x-retell-signature";

/// How far a signature's timestamp may be from our clock (Retell SDKs use the same window).
pub const TOLERANCE_MS: i64 = 5 * 60 * 1000;

/// Why a signature was refused. The HTTP layer answers 401 for every variant; the variant is
/// logged so an operator can tell a clock problem from a wrong key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the x-retell-signature header is missing")]
    Missing,
    #[error("the x-retell-signature header is not `v=<unix ms>,d=<hex digest>`")]
    Malformed,
    #[error(
        "the signature is {age_ms} ms away from the server clock (allowed: {TOLERANCE_MS} ms)"
    )]
    Stale { age_ms: i64 },
    #[error("the signature does not match the body (wrong API key, or the body was altered)")]
    Mismatch,
}

/// The two parts of the header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ParsedSignature {
    /// The timestamp exactly as sent (it is part of the signed message).
    timestamp: String,
    timestamp_ms: i64,
    digest: Vec<u8>,
}

fn parse(header: &str) -> Result<ParsedSignature, SignatureError> {
    let rest = header
        .trim()
        .strip_prefix("v=")
        .ok_or(SignatureError::Malformed)?;
    let (timestamp, digest_hex) = rest.split_once(",d=").ok_or(SignatureError::Malformed)?;
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Malformed);
    }
    let timestamp_ms = timestamp
        .parse::<i64>()
        .map_err(|_| SignatureError::Malformed)?;
    let digest = hex::decode(digest_hex.trim()).map_err(|_| SignatureError::Malformed)?;
    Ok(ParsedSignature {
        timestamp: timestamp.to_string(),
        timestamp_ms,
        digest,
    })
}

fn mac(api_key: &str, body: &[u8], timestamp: &str) -> Result<HmacSha256, SignatureError> {
    // HMAC takes keys of any length, so this error cannot happen in practice.
    let mut mac =
        HmacSha256::new_from_slice(api_key.as_bytes()).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.update(timestamp.as_bytes());
    Ok(mac)
}

/// Verifies `header` (None when absent) for `body` at `now_ms` (unix milliseconds).
///
/// The digest comparison is constant-time (`Mac::verify_slice`).
pub fn verify(
    api_key: &str,
    body: &[u8],
    header: Option<&str>,
    now_ms: i64,
) -> Result<(), SignatureError> {
    let parsed = parse(header.ok_or(SignatureError::Missing)?)?;
    let age_ms = now_ms.saturating_sub(parsed.timestamp_ms);
    if age_ms.saturating_abs() > TOLERANCE_MS {
        return Err(SignatureError::Stale { age_ms });
    }
    mac(api_key, body, &parsed.timestamp)?
        .verify_slice(&parsed.digest)
        .map_err(|_| SignatureError::Mismatch)
}

/// Produces the header Retell would send for `body` at `timestamp_ms`. Used by tests, the demo
/// and anyone replaying captured events against a daemon.
pub fn sign(api_key: &str, body: &[u8], timestamp_ms: i64) -> String {
    let timestamp = timestamp_ms.to_string();
    let digest = mac(api_key, body, &timestamp)
        .map(|mac| hex::encode(mac.finalize().into_bytes()))
        .unwrap_or_default();
    format!("v={timestamp},d={digest}")
}

/// The current time in unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "key_test_webhook";
    const NOW: i64 = 1_767_225_600_000;

    #[test]
    fn known_vector() {
        // Computed independently of this code, with both
        //   printf '%s' '{"event":"call_analyzed"}1767225600000' | openssl dgst -sha256 -hmac key_test_webhook
        // and Python's hmac module (body, then the timestamp digits, keyed with the API key).
        let header = sign(KEY, br#"{"event":"call_analyzed"}"#, NOW);
        assert_eq!(
            header,
            "v=1767225600000,d=bdbbd098c7fd3d8eadadebf70e5baf3c35b9e155d7230163e5d4d4dc1e12b56a"
        );
    }

    #[test]
    fn accepts_its_own_signature_within_the_window() {
        let body = br#"{"event":"call_analyzed","call":{"call_id":"c1"}}"#;
        for skew in [0, 1, TOLERANCE_MS, -TOLERANCE_MS] {
            let header = sign(KEY, body, NOW + skew);
            assert_eq!(verify(KEY, body, Some(&header), NOW), Ok(()), "skew {skew}");
        }
    }

    #[test]
    fn refuses_stale_and_future_signatures() {
        let body = b"{}";
        let old = sign(KEY, body, NOW - TOLERANCE_MS - 1);
        assert_eq!(
            verify(KEY, body, Some(&old), NOW),
            Err(SignatureError::Stale {
                age_ms: TOLERANCE_MS + 1
            })
        );
        let future = sign(KEY, body, NOW + TOLERANCE_MS + 1);
        assert!(matches!(
            verify(KEY, body, Some(&future), NOW),
            Err(SignatureError::Stale { .. })
        ));
    }

    #[test]
    fn refuses_wrong_key_altered_body_and_missing_header() {
        let body = br#"{"a":1}"#;
        let header = sign(KEY, body, NOW);
        assert_eq!(
            verify("another_key", body, Some(&header), NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(KEY, br#"{"a":2}"#, Some(&header), NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify(KEY, body, None, NOW), Err(SignatureError::Missing));
    }

    #[test]
    fn refuses_malformed_headers() {
        let body = b"{}";
        let good = sign(KEY, body, NOW);
        let digest = good.split_once(",d=").map(|(_, d)| d).unwrap_or_default();
        for header in [
            "".to_string(),
            "garbage".to_string(),
            format!("d={digest},v={NOW}"),
            format!("v=,d={digest}"),
            format!("v=-5,d={digest}"),
            format!("v={NOW},d=zz{digest}"),
            format!("v={NOW}"),
            format!("v=99999999999999999999999,d={digest}"),
        ] {
            assert_eq!(
                verify(KEY, body, Some(&header), NOW),
                Err(SignatureError::Malformed),
                "{header}"
            );
        }
        // A digest of the wrong length parses but can never match.
        assert_eq!(
            verify(KEY, body, Some(&format!("v={NOW},d=abcd")), NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_timestamp_is_part_of_the_signed_message() {
        // Moving the timestamp (still inside the window) without re-signing must fail: an
        // attacker cannot refresh an old capture.
        let body = b"{}";
        let header = sign(KEY, body, NOW - 1000);
        let digest = header.split_once(",d=").map(|(_, d)| d).unwrap_or_default();
        let moved = format!("v={NOW},d={digest}");
        assert_eq!(
            verify(KEY, body, Some(&moved), NOW),
            Err(SignatureError::Mismatch)
        );
    }
}
