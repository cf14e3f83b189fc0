//! Opaque, prefixed secrets (design.md "Credentials").
//!
//! Every secret Tessera issues is `tes_<kind>_` + 8 base62 characters telling the millisecond it
//! was issued + 43 random base62 characters (256 bits) + a 6-character CRC-32 checksum, so that
//! secret scanners can recognise a leaked one and a typo is caught before any database lookup.
//! Only the SHA-256 hash of a secret is ever stored.
//!
//! The issue time is there for the store: authorization codes, access and refresh tokens are
//! filed under a token key that begins with it (see [`IssuedSecret::token_key`]), so each new one
//! lands at the end of the key index rather than on a random page of it. A random key costs a
//! random page write per token, and once the table outgrows memory a random page read too. Secrets issued before the
//! issue time was added are 8 characters shorter; they are still accepted, and their tokens are
//! filed under the bare hash, which the length tells apart.

use std::fmt;

use rand::distributions::{Alphanumeric, DistString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The kind of a secret, which fixes its prefix.
///
/// NEVER CHANGE A PREFIX: issued secrets, secret scanners and partners' code depend on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    AuthorizationCode,
    AccessToken,
    RefreshToken,
    ClientSecret,
    ApiKey,
    Session,
}

impl SecretKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            SecretKind::AuthorizationCode => "tes_ac_",
            SecretKind::AccessToken => "tes_at_",
            SecretKind::RefreshToken => "tes_rt_",
            SecretKind::ClientSecret => "tes_sk_",
            SecretKind::ApiKey => "tes_ak_",
            SecretKind::Session => "tes_se_",
        }
    }
}

/// 43 base62 characters carry 43 * log2(62) = 256.03 bits.
const RANDOM_LEN: usize = 43;
/// Base62 milliseconds since the Unix epoch, zero-padded: sorts as it counts, for 6,900 years.
const ISSUED_AT_LEN: usize = 8;
const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A freshly issued secret. It is shown to its owner once and never stored; only its
/// [`SecretHash`] is.
pub struct IssuedSecret {
    value: String,
    kind: SecretKind,
}

impl IssuedSecret {
    pub fn generate(kind: SecretKind) -> Self {
        let mut value = String::with_capacity(kind.prefix().len() + ISSUED_AT_LEN + RANDOM_LEN + CHECKSUM_LEN);
        value.push_str(kind.prefix());
        value.push_str(&issued_at(crate::time::now_millis()));
        Alphanumeric.append_string(&mut rand::thread_rng(), &mut value, RANDOM_LEN);
        let checksum = checksum(&value);
        value.push_str(&checksum);
        IssuedSecret { value, kind }
    }

    /// The secret itself, for the one response that hands it out.
    pub fn expose(&self) -> &str {
        &self.value
    }

    pub fn into_exposed(self) -> String {
        self.value
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.value)
    }

    /// The key a code, access or refresh token is stored under: its issue-time characters, then
    /// its SHA-256.
    pub fn token_key(&self) -> String {
        token_key(self.kind, &self.value)
    }

    pub fn kind(&self) -> SecretKind {
        self.kind
    }
}

impl fmt::Debug for IssuedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IssuedSecret({}…)", self.kind.prefix())
    }
}

/// A secret as presented by a client, after its shape and checksum have been verified.
pub struct PresentedSecret<'a>(SecretKind, &'a str);

impl<'a> PresentedSecret<'a> {
    /// Accepts only well-formed secrets of the expected kind, so garbage never reaches the database.
    pub fn parse(kind: SecretKind, value: &'a str) -> Option<Self> {
        let body = value.strip_prefix(kind.prefix())?;
        let current = ISSUED_AT_LEN + RANDOM_LEN + CHECKSUM_LEN;
        let before_issue_times = RANDOM_LEN + CHECKSUM_LEN;
        if ![current, before_issue_times].contains(&body.len()) || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let (without_checksum, given) = value.split_at(value.len() - CHECKSUM_LEN);
        let expected = checksum(without_checksum);
        bool::from(expected.as_bytes().ct_eq(given.as_bytes())).then_some(PresentedSecret(kind, value))
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash::of(self.1)
    }

    /// The key a code, access or refresh token is stored under, as [`IssuedSecret::token_key`];
    /// one issued before secrets carried their issue time is stored under its bare hash.
    pub fn token_key(&self) -> String {
        token_key(self.0, self.1)
    }
}

/// Issue time, then SHA-256 (72 characters); the bare hash (64) for a secret without an issue
/// time. The two cannot be confused.
fn token_key(kind: SecretKind, secret: &str) -> String {
    let hash = SecretHash::of(secret).0;
    let body = &secret[kind.prefix().len()..];
    if body.len() < ISSUED_AT_LEN + RANDOM_LEN + CHECKSUM_LEN {
        return hash;
    }
    let mut key = String::with_capacity(ISSUED_AT_LEN + hash.len());
    key.push_str(&body[..ISSUED_AT_LEN]);
    key.push_str(&hash);
    key
}

fn issued_at(millis: i64) -> String {
    let mut n = millis.max(0) as u64;
    let mut out = [b'0'; ISSUED_AT_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

impl fmt::Debug for PresentedSecret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresentedSecret(…)")
    }
}

/// SHA-256 of a secret, hex-encoded: what the store keeps and looks rows up by.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash(String);

impl SecretHash {
    pub fn of(secret: &str) -> Self {
        SecretHash(hex(&Sha256::digest(secret.as_bytes())))
    }

    pub fn from_stored(hex: String) -> Self {
        SecretHash(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison, for hashes fetched by something other than the hash itself.
    pub fn matches(&self, other: &SecretHash) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({}…)", &self.0[..8.min(self.0.len())])
    }
}

/// Random base62 characters after an id's creation time: about 83 bits, so ids created in the
/// same millisecond never meet.
const ID_RANDOM_LEN: usize = 14;

/// A non-secret opaque identifier such as `db_0bVxQ3kA...`: the prefix, the creation millisecond
/// in 8 base62 characters, and 14 random ones. Ids in creation order append to the right edge
/// of their table's primary key instead of landing on a random page of it, as token keys do;
/// the time they carry is no secret (every resource shows its `created_at`).
pub fn new_id(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + 1 + ISSUED_AT_LEN + ID_RANDOM_LEN);
    id.push_str(prefix);
    id.push('_');
    id.push_str(&issued_at(crate::time::now_millis()));
    id.push_str(&Alphanumeric.sample_string(&mut rand::thread_rng(), ID_RANDOM_LEN));
    id
}

/// A random token with no prefix, for values such as CSRF tokens that are never stored.
pub fn random_token() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), RANDOM_LEN)
}

pub fn sha256_hex(input: &[u8]) -> String {
    hex(&Sha256::digest(input))
}

/// Constant-time string equality.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn checksum(value: &str) -> String {
    let mut n = crc32fast::hash(value.as_bytes());
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_secrets_are_prefixed_and_parse_back() {
        for kind in [SecretKind::AccessToken, SecretKind::ClientSecret, SecretKind::ApiKey] {
            let secret = IssuedSecret::generate(kind);
            assert!(secret.expose().starts_with(kind.prefix()));
            assert_eq!(secret.expose().len(), kind.prefix().len() + ISSUED_AT_LEN + RANDOM_LEN + CHECKSUM_LEN);
            let parsed = PresentedSecret::parse(kind, secret.expose()).expect("parses");
            assert!(parsed.hash().matches(&secret.hash()));
        }
    }

    #[test]
    fn a_changed_character_fails_the_checksum() {
        let secret = IssuedSecret::generate(SecretKind::AccessToken);
        let mut tampered = secret.expose().to_owned().into_bytes();
        let i = SecretKind::AccessToken.prefix().len() + 3;
        tampered[i] = if tampered[i] == b'a' { b'b' } else { b'a' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert!(PresentedSecret::parse(SecretKind::AccessToken, &tampered).is_none());
    }

    #[test]
    fn a_secret_of_another_kind_or_shape_is_refused() {
        let secret = IssuedSecret::generate(SecretKind::RefreshToken);
        assert!(PresentedSecret::parse(SecretKind::AccessToken, secret.expose()).is_none());
        assert!(PresentedSecret::parse(SecretKind::RefreshToken, "tes_rt_short").is_none());
        assert!(PresentedSecret::parse(SecretKind::RefreshToken, "").is_none());
        let with_unicode = format!("{}é", &secret.expose()[..secret.expose().len() - 2]);
        assert!(PresentedSecret::parse(SecretKind::RefreshToken, &with_unicode).is_none());
    }

    #[test]
    fn token_keys_sort_by_issue_time_and_are_found_again() {
        let first = IssuedSecret::generate(SecretKind::AccessToken);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = IssuedSecret::generate(SecretKind::AccessToken);
        assert!(first.token_key() < second.token_key(), "a later token must sort after an earlier one");
        assert_eq!(second.token_key().len(), ISSUED_AT_LEN + 64);
        let presented = PresentedSecret::parse(SecretKind::AccessToken, second.expose()).expect("parses");
        assert_eq!(presented.token_key(), second.token_key());
    }

    #[test]
    fn secrets_from_before_issue_times_still_parse_and_keep_their_bare_hash_as_key() {
        let mut old = String::from("tes_rt_");
        old.push_str(&Alphanumeric.sample_string(&mut rand::thread_rng(), RANDOM_LEN));
        old.push_str(&checksum(&old));
        let presented = PresentedSecret::parse(SecretKind::RefreshToken, &old).expect("an earlier secret parses");
        assert_eq!(presented.token_key(), sha256_hex(old.as_bytes()));
        assert!(PresentedSecret::parse(SecretKind::RefreshToken, &old[..old.len() - 1]).is_none());
    }

    #[test]
    fn issue_times_encode_in_order() {
        let times = [0, 61, 62, 1_000_000, 1_764_600_000_000, 1_764_600_000_001, 62_i64.pow(8) - 1];
        let encoded: Vec<String> = times.iter().map(|&t| issued_at(t)).collect();
        assert!(encoded.windows(2).all(|w| w[0] < w[1]), "{encoded:?}");
        assert!(encoded.iter().all(|e| e.len() == ISSUED_AT_LEN));
    }

    #[test]
    fn ids_keep_their_length_and_sort_by_creation_time() {
        let first = new_id("db");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = new_id("db");
        assert_eq!(first.len(), "db_".len() + 22);
        assert!(first.starts_with("db_") && first[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(first < second, "{first} was created before {second}");
        assert_ne!(new_id("db")[11..], new_id("db")[11..], "the random part differs");
    }

    #[test]
    fn debug_output_never_contains_the_secret() {
        let secret = IssuedSecret::generate(SecretKind::ClientSecret);
        let shown = format!("{secret:?} {:?}", secret.hash());
        assert!(!shown.contains(&secret.expose()[7..20]));
    }
}
