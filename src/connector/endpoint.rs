//! Where a request may go, and how a value becomes part of its path.
//!
//! URLs and ids that come from a CRM's answers are not trusted (docs/sync-semantics.md,
//! "URLs and record ids from a CRM"): a Salesforce `nextRecordsUrl` is followed only when it is
//! a path on the session's own origin (scheme, host and port of the instance URL), because the
//! request carries the bearer token; and every value put into a path is one escaped segment,
//! so an id like `../../v3/objects/contacts/1001?x=` cannot climb to another endpoint or add a
//! query.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use url::Url;

/// Escaped in a path segment: everything but RFC 3986's unreserved characters. `/`, `?`, `#`,
/// `%`, `@` and `\` included.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `value` as one path segment. `.` and `..` (which URL parsers resolve away) become `%2E` /
/// `%2E%2E`, which the url crate treats the same way, so they are spelled out as `%252E`: no
/// caller has a legitimate segment of only dots, and this keeps such a value in place.
pub fn segment(value: &str) -> String {
    if !value.is_empty() && value.bytes().all(|b| b == b'.') {
        return "%252E".repeat(value.len());
    }
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// The URL for `path` on the session at `base`: `path` must be a path (`/...`) or an absolute
/// URL, and the result must have `base`'s origin. Anything else is refused with why.
///
/// WHY the string join and not `Url::join`: `base` may carry a path prefix that every request
/// path goes below (a proxy mount), which `join` with an absolute path would drop.
pub fn resolve(base: &str, path: &str) -> Result<Url, String> {
    let base_url =
        Url::parse(base).map_err(|e| format!("the base URL `{base}` is not a URL: {e}"))?;
    let candidate = if path.starts_with('/') && !path.starts_with("//") {
        format!("{}{path}", base.trim_end_matches('/'))
    } else if path.starts_with("https://") || path.starts_with("http://") {
        path.to_string()
    } else {
        // `@host/...`, `//host/...`, `host:port/...`: glued onto the base, each would name
        // another host (or user info) rather than a path.
        return Err(format!(
            "`{path}` is not a path on {}",
            origin_text(&base_url)
        ));
    };
    let url = Url::parse(&candidate).map_err(|e| format!("`{path}` is not a valid path: {e}"))?;
    if url.origin() != base_url.origin() || !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "`{path}` points outside {}: not followed (the request would carry the access token)",
            origin_text(&base_url)
        ));
    }
    Ok(url)
}

fn origin_text(url: &Url) -> String {
    url.origin().ascii_serialization()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://acme.my.salesforce.com";

    #[test]
    fn same_origin_paths_are_followed() {
        for path in [
            "/services/data/v62.0/query/01gXX-2000",
            "https://acme.my.salesforce.com/services/data/v62.0/query/01gXX-2000",
            "https://ACME.my.salesforce.com:443/services/data/v62.0/query/x",
        ] {
            let url = resolve(BASE, path).unwrap();
            assert_eq!(url.host_str(), Some("acme.my.salesforce.com"), "{path}");
        }
        // A base with a path prefix keeps it.
        assert_eq!(
            resolve("http://127.0.0.1:9/proxy", "/crm/v3/x")
                .unwrap()
                .path(),
            "/proxy/crm/v3/x"
        );
    }

    #[test]
    fn other_origins_and_host_tricks_are_refused() {
        for path in [
            "https://evil.example/services/data/v62.0/query/x",
            "http://acme.my.salesforce.com/services/data/v62.0/query/x",
            "https://acme.my.salesforce.com:8443/x",
            "https://acme.my.salesforce.com@evil.example/x",
            "https://user:pw@acme.my.salesforce.com/x",
            "@evil.example/services/data/v62.0/query/x",
            ".evil.example/x",
            "//evil.example/x",
            ":8443/x",
            "services/data/v62.0/query/x",
            "javascript:alert(1)",
            "",
        ] {
            let err = resolve(BASE, path).unwrap_err();
            assert!(err.contains(&format!("`{path}`")), "{path}: {err}");
        }
    }

    #[test]
    fn a_segment_stays_one_segment() {
        assert_eq!(segment("1001"), "1001");
        assert_eq!(segment("Contact"), "Contact");
        assert_eq!(
            segment("../../v3/objects/contacts/1001?x="),
            "..%2F..%2Fv3%2Fobjects%2Fcontacts%2F1001%3Fx%3D"
        );
        assert_eq!(segment("a b#c%d@e\\f"), "a%20b%23c%25d%40e%5Cf");
        for dots in [".", ".."] {
            let url = resolve(
                BASE,
                &format!("/crm/v4/objects/contacts/{}/x", segment(dots)),
            )
            .unwrap();
            assert!(url.path().starts_with("/crm/v4/objects/contacts/"), "{url}");
        }
    }
}
