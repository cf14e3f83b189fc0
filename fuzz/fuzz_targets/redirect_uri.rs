//! Redirect-URI registration and matching (RFC 9700 §4.1, RFC 8252 §7.3).
//!
//! The input is split at NUL bytes: registered candidates, then the presented URI; the first
//! byte picks public or confidential. Properties: nothing panics; what registration accepts is
//! the trimmed input, accepted again unchanged, with no fragment, wildcard, space or user info,
//! and https (or http on loopback); a match is always one of the registered URIs; a confidential
//! client matches by exact string equality only; a public client's non-exact match is loopback
//! http differing from the registered URI in the port alone. Logo and homepage URLs accepted are
//! https with a host and no invisible characters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::apps::redirect_uri::{find_match, validate, validate_https_url};
use url::Url;

fn is_loopback(url: &Url) -> bool {
    matches!(url.host_str(), Some("127.0.0.1" | "[::1]"))
        || url.host_str().is_some_and(|h| h.eq_ignore_ascii_case("localhost"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let public = flags & 1 == 1;
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let mut parts: Vec<&str> = text.split('\0').collect();
    let presented = parts.pop().unwrap_or_default();

    let mut registered = Vec::new();
    for candidate in &parts {
        // Logo and homepage URLs end up in pages: https, a host, nothing invisible.
        if let Ok(Some(url)) = validate_https_url(candidate) {
            assert_eq!(url, candidate.trim());
            assert!(!url.chars().any(|c| c.is_whitespace() || c.is_control()), "{url:?}");
            let parsed = Url::parse(&url).expect("an accepted URL parses");
            assert!(parsed.scheme() == "https" && parsed.host().is_some(), "{url:?}");
        }
        if let Ok(uri) = validate(candidate) {
            assert_eq!(uri, candidate.trim());
            assert_eq!(validate(&uri).as_deref(), Ok(uri.as_str()), "validation is idempotent");
            assert!(!uri.contains(['#', '*']) && !uri.chars().any(|c| c.is_whitespace() || c.is_control()), "{uri:?}");
            let url = Url::parse(&uri).expect("an accepted URI parses");
            assert!(url.username().is_empty() && url.password().is_none(), "{uri:?}");
            match url.scheme() {
                "https" => assert!(url.host().is_some(), "{uri:?}"),
                "http" => assert!(is_loopback(&url), "{uri:?}"),
                other => panic!("{uri:?} accepted with scheme {other}"),
            }
            registered.push(uri);
        }
    }
    let _ = validate(presented);

    let found = find_match(&registered, presented, public);
    if registered.iter().any(|r| r == presented) {
        assert_eq!(found, Some(presented), "an exact match is always found");
    }
    let Some(found) = found else { return };
    assert!(registered.iter().any(|r| r == found), "the match is one of the registered URIs");
    if !public {
        assert_eq!(found, presented, "confidential clients match exactly");
    }
    if found != presented {
        let reg = Url::parse(found).expect("registered parses");
        let pre = Url::parse(presented).expect("a loopback match parses");
        assert!(reg.scheme() == "http" && pre.scheme() == "http", "{found:?} ~ {presented:?}");
        assert!(is_loopback(&reg) && is_loopback(&pre), "{found:?} ~ {presented:?}");
        assert_eq!(reg.host_str(), pre.host_str(), "{found:?} ~ {presented:?}");
        assert_eq!(reg.path(), pre.path(), "{found:?} ~ {presented:?}");
        assert_eq!(reg.query(), pre.query(), "{found:?} ~ {presented:?}");
        assert_eq!(reg.fragment(), pre.fragment(), "{found:?} ~ {presented:?}");
        assert!(pre.username().is_empty() && pre.password().is_none(), "{found:?} ~ {presented:?}");
        // Only the port may differ in the text as well.
        assert!(presented.starts_with("http://"), "{presented:?}");
    }
});
