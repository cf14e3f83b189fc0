//! PKCE S256 (RFC 7636).
//!
//! The input is a verifier and a challenge separated by NUL. Properties: nothing panics; a
//! verifier of the RFC's shape verifies against its own S256 challenge, computed here
//! independently; `verify` succeeds only for such a pair; a valid challenge is 43 characters
//! of the RFC's alphabet.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use tessera::oauth::pkce::{is_valid_challenge, verify};

fn rfc_shape(s: &str) -> bool {
    (43..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (verifier, challenge) = text.split_once('\0').unwrap_or((text, ""));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));

    if is_valid_challenge(challenge) {
        assert!(challenge.len() == 43 && rfc_shape(challenge), "{challenge:?}");
    }
    if verify(verifier, challenge) {
        assert!(rfc_shape(verifier), "{verifier:?}");
        assert_eq!(challenge, computed);
        assert!(is_valid_challenge(challenge));
    }
    assert_eq!(verify(verifier, &computed), rfc_shape(verifier), "{verifier:?}");
    assert!(is_valid_challenge(&computed));
    if computed != challenge {
        assert!(!verify(verifier, challenge));
    }
});
