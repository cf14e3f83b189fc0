//! Prefixed secrets with a CRC-32 checksum (design.md "Credentials").
//!
//! Properties: parsing arbitrary text never panics and accepts only the documented shape; a
//! generated secret parses back to the same hash; any single-character substitution or an
//! adjacent transposition of a generated secret is refused (CRC-32 catches every burst of at most
//! 32 bits, and the base62 checksum keeps all 32 bits); a secret of one kind is refused as another.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::credentials::{IssuedSecret, PresentedSecret, SecretKind};

const KINDS: [SecretKind; 6] = [
    SecretKind::AuthorizationCode,
    SecretKind::AccessToken,
    SecretKind::RefreshToken,
    SecretKind::ClientSecret,
    SecretKind::ApiKey,
    SecretKind::Session,
];

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let kind = KINDS[first as usize % KINDS.len()];

    // Arbitrary text.
    if let Ok(text) = std::str::from_utf8(rest) {
        if PresentedSecret::parse(kind, text).is_some() {
            let body = text.strip_prefix(kind.prefix()).expect("accepted secrets carry their prefix");
            // 8 issue-time characters (absent from secrets issued before), 43 random ones, the checksum.
            assert!([8 + 43 + 6, 43 + 6].contains(&body.len()), "{text:?}");
            assert!(body.bytes().all(|b| b.is_ascii_alphanumeric()), "{text:?}");
        }
    }

    // A generated secret round-trips, and is refused as any other kind.
    let secret = IssuedSecret::generate(kind);
    let value = secret.expose().to_owned();
    let parsed = PresentedSecret::parse(kind, &value).expect("a generated secret parses");
    assert!(parsed.hash().matches(&secret.hash()));
    for other in KINDS.iter().filter(|k| **k != kind) {
        assert!(PresentedSecret::parse(*other, &value).is_none());
    }

    // Corruptions chosen by the input.
    let prefix = kind.prefix().len();
    let body_len = value.len() - prefix;
    for pair in rest.chunks(2) {
        let position = prefix + pair[0] as usize % body_len;
        let replacement = *pair.get(1).unwrap_or(&b'x');
        let mut bytes = value.clone().into_bytes();
        if replacement != bytes[position] {
            bytes[position] = replacement;
            if let Ok(tampered) = String::from_utf8(bytes) {
                assert!(PresentedSecret::parse(kind, &tampered).is_none(), "{tampered:?} passed the checksum");
            }
        }
        let mut bytes = value.clone().into_bytes();
        if position + 1 < value.len() && bytes[position] != bytes[position + 1] {
            bytes.swap(position, position + 1);
            let swapped = String::from_utf8(bytes).expect("ascii");
            assert!(PresentedSecret::parse(kind, &swapped).is_none(), "{swapped:?} passed the checksum");
        }
    }
});
