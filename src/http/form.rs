//! Strict `application/x-www-form-urlencoded` parsing.
//!
//! Unlike a lenient parser, this refuses a wrong content type, a body over the limit and invalid
//! UTF-8 (instead of silently replacing it), and keeps repeated keys so that callers can refuse
//! them where a protocol says so (RFC 6749 §3.1).

use axum::body::Body;
use axum::http::{header, HeaderMap};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormError {
    #[error("the request must be sent as application/x-www-form-urlencoded")]
    ContentType,
    #[error("the request body is too large")]
    TooLarge,
    #[error("the request body could not be read")]
    Unreadable,
    #[error("the form is not valid UTF-8")]
    InvalidUtf8,
}

#[derive(Clone, Debug, Default)]
pub struct FormData {
    pairs: Vec<(String, String)>,
}

impl FormData {
    pub async fn read(headers: &HeaderMap, body: Body, limit: usize) -> Result<FormData, FormError> {
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(FormError::ContentType);
        }
        let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
            let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                FormError::TooLarge
            } else {
                FormError::Unreadable
            }
        })?;
        FormData::parse(&bytes)
    }

    pub fn parse(bytes: &[u8]) -> Result<FormData, FormError> {
        let mut pairs = Vec::new();
        for piece in bytes.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (key, value) = match piece.iter().position(|&b| b == b'=') {
                Some(i) => (&piece[..i], &piece[i + 1..]),
                None => (piece, &b""[..]),
            };
            pairs.push((decode(key)?, decode(value)?));
        }
        Ok(FormData { pairs })
    }

    /// Every pair, in the order sent.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The first value of `key`, or "" when it is absent.
    pub fn text(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    /// The first key that appears more than once, if any.
    pub fn repeated_key(&self) -> Option<&str> {
        self.pairs
            .iter()
            .enumerate()
            .find(|(i, (k, _))| self.pairs[..*i].iter().any(|(seen, _)| seen == k))
            .map(|(_, (k, _))| k.as_str())
    }
}

fn decode(raw: &[u8]) -> Result<String, FormError> {
    decode_component(raw).ok_or(FormError::InvalidUtf8)
}

/// One `application/x-www-form-urlencoded` name or value: `+` is a space, `%XX` a byte (a `%`
/// without two hex digits stays as it is), and the result must be UTF-8 (`None` if not).
///
/// One pass into a buffer and one UTF-8 check, copying the runs between `+` and `%` whole (a
/// token or secret is one run): `percent_decode`'s byte iterator cost about a thousand
/// instructions per token-sized value, and every token request carries several.
pub fn decode_component(raw: &[u8]) -> Option<String> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = memchr::memchr2(b'+', b'%', rest) {
        bytes.extend_from_slice(&rest[..at]);
        let special = rest[at];
        let after = &rest[at + 1..];
        rest = after;
        if special == b'+' {
            bytes.push(b' ');
        } else if let (Some(high), Some(low)) = (after.first().and_then(hex_digit), after.get(1).and_then(hex_digit)) {
            bytes.push(high << 4 | low);
            rest = &after[2..];
        } else {
            bytes.push(b'%');
        }
    }
    bytes.extend_from_slice(rest);
    String::from_utf8(bytes).ok()
}

fn hex_digit(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_plus_and_percent_escapes() {
        let form = FormData::parse(b"a=1&b=two+words&c=%C3%A9&a=2&empty=&bare").expect("parses");
        assert_eq!(form.get("a"), Some("1"));
        assert_eq!(form.all("a"), vec!["1", "2"]);
        assert_eq!(form.text("b"), "two words");
        assert_eq!(form.text("c"), "é");
        assert_eq!(form.get("empty"), Some(""));
        assert_eq!(form.get("bare"), Some(""));
        assert_eq!(form.repeated_key(), Some("a"));
    }

    #[test]
    fn components_without_escapes_are_taken_as_they_are() {
        assert_eq!(decode_component(b"tes_at_0AbC-_.~").as_deref(), Some("tes_at_0AbC-_.~"));
        assert_eq!(decode_component(b"a+b%2Bc").as_deref(), Some("a b+c"));
        assert_eq!(decode_component(b"\xc3\xa9").as_deref(), Some("\u{e9}"));
        assert_eq!(decode_component(b"\xff"), None);
        assert_eq!(decode_component(b"%41%4a%4B%").as_deref(), Some("AJK%"));
        assert_eq!(decode_component(b"%4").as_deref(), Some("%4"));
        assert_eq!(decode_component(b"%zz%2").as_deref(), Some("%zz%2"));
    }

    /// Every string of up to five bytes over an alphabet of escapes, hex digits, non-hex letters
    /// and UTF-8 pieces decodes exactly as the percent-encoding crate decodes it (after `+`).
    #[test]
    fn decodes_every_short_component_as_percent_encoding_does() {
        const ALPHABET: [u8; 9] = [b'a', b'+', b'%', b'2', b'B', b'g', 0xC3, 0xA9, 0xFF];
        let mut input = Vec::new();
        for len in 0..=5u32 {
            for mut n in 0..ALPHABET.len().pow(len) {
                input.clear();
                for _ in 0..len {
                    input.push(ALPHABET[n % ALPHABET.len()]);
                    n /= ALPHABET.len();
                }
                let plus_as_space: Vec<u8> = input.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
                let expected = percent_encoding::percent_decode(&plus_as_space).decode_utf8().ok().map(String::from);
                assert_eq!(decode_component(&input), expected, "{input:?}");
            }
        }
    }

    #[test]
    fn refuses_invalid_utf8() {
        assert_eq!(FormData::parse(b"a=%FF%FE").unwrap_err(), FormError::InvalidUtf8);
        assert_eq!(FormData::parse(b"a=\xff").unwrap_err(), FormError::InvalidUtf8);
    }
}
