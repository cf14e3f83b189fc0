//! The strict form parser behind the token, revocation and introspection endpoints.
//!
//! Properties: parsing never panics; a parsed form re-encoded and parsed again gives the same
//! pairs; the repeated-key check (RFC 6749 §3.2) agrees with a naive count; valid UTF-8 without
//! escapes decodes to itself; input that is not UTF-8 and has no escapes is refused; each name or
//! value decodes exactly as the `percent-encoding` crate decodes it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use percent_encoding::{percent_decode, utf8_percent_encode, NON_ALPHANUMERIC};
use tessera::http::form::{decode_component, FormData, FormError};

fuzz_target!(|data: &[u8]| {
    let plus_as_space: Vec<u8> = data.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
    let reference = percent_decode(&plus_as_space).decode_utf8().ok().map(|s| s.into_owned());
    assert_eq!(decode_component(data), reference, "decodes as the percent-encoding crate does");

    if std::str::from_utf8(data).is_err() && !data.contains(&b'%') && !data.contains(&b'+') {
        assert!(FormData::parse(data).is_err(), "invalid UTF-8 must be refused, not replaced");
    }
    let form = match FormData::parse(data) {
        Ok(form) => form,
        Err(e) => {
            assert_eq!(e, FormError::InvalidUtf8, "parse can only fail on UTF-8");
            return;
        }
    };
    let pairs = form.pairs();

    // Round trip through a canonical encoding.
    let encoded = pairs
        .iter()
        .map(|(k, v)| {
            format!("{}={}", utf8_percent_encode(k, NON_ALPHANUMERIC), utf8_percent_encode(v, NON_ALPHANUMERIC))
        })
        .collect::<Vec<_>>()
        .join("&");
    let again = FormData::parse(encoded.as_bytes()).expect("a canonical encoding parses");
    assert_eq!(again.pairs(), pairs);

    // The repeated-key check agrees with counting.
    match form.repeated_key() {
        Some(key) => assert!(form.all(key).len() >= 2, "{key:?} reported as repeated"),
        None => {
            for (k, _) in pairs {
                assert_eq!(form.all(k).len(), 1, "{k:?} is repeated but not reported");
            }
        }
    }
    for (k, v) in pairs {
        assert!(form.get(k).is_some());
        assert!(form.all(k).contains(&v.as_str()));
    }

    // Without escapes, what you send is what you get.
    if let Ok(text) = std::str::from_utf8(data) {
        if !text.contains(['%', '+']) {
            let naive: Vec<(String, String)> = text
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.to_owned(), v.to_owned()),
                    None => (p.to_owned(), String::new()),
                })
                .collect();
            assert_eq!(pairs, naive.as_slice());
        }
    }
});
