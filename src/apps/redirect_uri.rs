//! Redirect URIs: what may be registered, and how a presented one is matched.
//!
//! Registration is strict (RFC 9700 §4.1): absolute, no fragment, no wildcard, https or loopback
//! http. Matching is exact string comparison, except that a public (native) client's loopback
//! redirect may use any port (RFC 8252 §7.3).

use url::{Host, Url};

pub const MAX_REDIRECT_URIS: usize = 10;
const MAX_URI_LEN: usize = 2000;

/// Checks a redirect URI for registration; the error says what is wrong, in words for a form.
pub fn validate(input: &str) -> Result<String, String> {
    let uri = input.trim();
    if uri.is_empty() {
        return Err("must not be empty".into());
    }
    if uri.len() > MAX_URI_LEN {
        return Err(format!("must be at most {MAX_URI_LEN} characters"));
    }
    if uri.contains('#') {
        return Err(format!("{uri}: must not contain a fragment (#)"));
    }
    if uri.contains('*') {
        return Err(format!("{uri}: wildcards are not allowed; register each URI exactly"));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{uri}: must not contain spaces"));
    }
    let url =
        Url::parse(uri).map_err(|_| format!("{uri}: must be an absolute URI such as https://example.com/callback"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{uri}: must not contain a user name or password"));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(uri.to_owned()),
        "http" if is_loopback(&url) => Ok(uri.to_owned()),
        "http" => Err(format!("{uri}: use https (http is allowed only for 127.0.0.1, [::1] and localhost)")),
        _ => Err(format!("{uri}: must use https (or http on a loopback host)")),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Finds the registered URI that `presented` stands for, if any.
pub fn find_match<'a>(registered: &'a [String], presented: &str, public_client: bool) -> Option<&'a str> {
    if let Some(exact) = registered.iter().find(|r| r.as_str() == presented) {
        return Some(exact);
    }
    if !public_client {
        return None;
    }
    let presented_url = Url::parse(presented).ok()?;
    if presented_url.scheme() != "http" || !is_loopback(&presented_url) {
        return None;
    }
    registered
        .iter()
        .find(|r| {
            Url::parse(r).is_ok_and(|reg| {
                reg.scheme() == "http" && is_loopback(&reg) && same_except_port(&reg, &presented_url, presented, r)
            })
        })
        .map(String::as_str)
}

fn same_except_port(registered: &Url, presented: &Url, presented_raw: &str, registered_raw: &str) -> bool {
    let mut a = registered.clone();
    let mut b = presented.clone();
    if a.set_port(None).is_err() || b.set_port(None).is_err() {
        return false;
    }
    // Compare normalised forms, but also require that nothing else was rewritten by parsing.
    a == b && strip_port(presented_raw) == strip_port(registered_raw)
}

fn strip_port(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else { return raw.to_owned() };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => &authority[..i],
        _ => authority,
    };
    format!("{scheme}://{host}{path}")
}

/// A logo or homepage URL: https only, so `javascript:` and friends never reach a page.
pub fn validate_https_url(input: &str) -> Result<Option<String>, String> {
    let text = input.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_URI_LEN {
        return Err(format!("must be at most {MAX_URI_LEN} characters"));
    }
    match Url::parse(text) {
        Ok(url)
            if url.scheme() == "https"
                && url.host().is_some()
                && !text.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(Some(text.to_owned()))
        }
        _ => Err("must be an https:// URL".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_accepts_https_and_loopback_http() {
        for ok in [
            "https://partner.example/callback",
            "https://partner.example:8443/cb?x=1",
            "http://127.0.0.1:3000/callback",
            "http://[::1]/cb",
            "http://localhost:3000/",
        ] {
            assert_eq!(validate(ok).as_deref(), Ok(ok), "{ok}");
        }
    }

    #[test]
    fn registration_refuses_everything_else() {
        for bad in [
            "",
            "/callback",
            "partner.example/cb",
            "http://partner.example/cb",
            "https://partner.example/cb#frag",
            "https://*.partner.example/cb",
            "javascript:alert(1)",
            "ftp://partner.example/",
            "https://user:pw@partner.example/",
            "http://127.0.0.2/cb",
            "https://partner.example/a b",
        ] {
            assert!(validate(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn matching_is_exact_except_loopback_ports_for_public_clients() {
        let registered = vec!["https://p.example/cb".to_owned(), "http://127.0.0.1/callback".to_owned()];
        assert!(find_match(&registered, "https://p.example/cb", false).is_some());
        for near_miss in
            ["https://p.example/cb/", "https://P.example/cb", "https://p.example/cb?x=1", "https://p.example/c"]
        {
            assert!(find_match(&registered, near_miss, true).is_none(), "{near_miss}");
        }
        assert!(find_match(&registered, "http://127.0.0.1:51234/callback", true).is_some());
        assert!(
            find_match(&registered, "http://127.0.0.1:51234/callback", false).is_none(),
            "confidential: exact only"
        );
        assert!(find_match(&registered, "http://127.0.0.1:51234/other", true).is_none());
        assert!(find_match(&registered, "http://localhost:51234/callback", true).is_none(), "host must match too");
    }

    #[test]
    fn logo_and_homepage_must_be_https() {
        assert_eq!(validate_https_url(""), Ok(None));
        assert!(validate_https_url("https://p.example/logo.png").is_ok());
        for bad in ["javascript:alert(1)", "http://p.example/", "data:image/png;base64,AAAA", "//p.example"] {
            assert!(validate_https_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn logo_and_homepage_urls_refuse_control_characters() {
        // Found by the redirect_uri fuzz target ("https:/p\u{5}" was accepted): the URL parser
        // percent-encodes control characters, so the check must look at the text as given.
        for bad in
            ["https:/p\u{5}", "https://p.example/a\u{1}b", "https://p.example/\u{7f}", "https://p.example/x\u{9b}"]
        {
            assert!(validate_https_url(bad).is_err(), "{bad:?}");
        }
    }
}
