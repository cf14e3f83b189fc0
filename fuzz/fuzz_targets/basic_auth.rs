//! `Authorization: Basic` client credentials at the token endpoint (RFC 6749 §2.3.1).
//!
//! Properties: parsing any header value never panics; credentials encoded the way the RFC says
//! (form-urlencode each part, join with `:`, base64) decode back to exactly what was encoded.
#![no_main]

use axum::http::{header, HeaderMap, HeaderValue};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use tessera::oauth::client_auth::basic_credentials;

fuzz_target!(|data: &[u8]| {
    // Arbitrary header values.
    if let Ok(value) = HeaderValue::from_bytes(data) {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value);
        let _ = basic_credentials(&headers);
    }

    // Round trip: split the input into an id and a secret.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (id, secret) = text.split_once('\0').unwrap_or((text, ""));
    let encoded =
        format!("{}:{}", utf8_percent_encode(id, NON_ALPHANUMERIC), utf8_percent_encode(secret, NON_ALPHANUMERIC));
    let value = format!("Basic {}", STANDARD.encode(encoded));
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&value).expect("base64 is a valid header value"));
    let parsed = basic_credentials(&headers).expect("well-formed credentials parse");
    assert_eq!(parsed, Some((id.to_owned(), secret.to_owned())));
});
