//! Scope lists (RFC 6749 §3.3).
//!
//! Properties: nothing panics; a parsed set is canonical (its string form parses to itself and is
//! sorted without duplicates), names exactly the scopes in the input, and equals what the store
//! reader makes of the same text; the store reader never invents a scope that is not in the text;
//! an input is refused only for an unknown name or for being longer than `MAX_SCOPE_LEN`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::apps::scopes::MAX_SCOPE_LEN;
use tessera::apps::{Scope, ScopeSet};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let names: Vec<&str> = text.split(' ').filter(|s| !s.is_empty()).collect();
    let stored = ScopeSet::from_stored(text);
    for scope in stored.iter() {
        assert!(names.contains(&scope.as_str()), "{scope} read from {text:?}");
    }
    match ScopeSet::parse(text) {
        Ok(set) => {
            assert!(names.iter().all(|n| Scope::parse(n).is_some()), "{text:?}");
            let canonical = set.to_string();
            let again = ScopeSet::parse(&canonical).expect("the canonical form parses");
            assert_eq!(again, set);
            assert_eq!(again.to_string(), canonical);
            let listed = set.names();
            let mut sorted = listed.clone();
            sorted.sort_by_key(|n| Scope::parse(n));
            sorted.dedup();
            assert_eq!(listed, sorted, "canonical order without duplicates");
            for name in &names {
                assert!(set.contains(Scope::parse(name).expect("known")), "{name}");
            }
            assert_eq!(stored, set, "store reader and request parser agree on valid text");
            assert!(set.is_subset_of(&set));
        }
        Err(message) => {
            let too_long = text.len() > MAX_SCOPE_LEN;
            assert!(too_long || names.iter().any(|n| Scope::parse(n).is_none()), "{text:?} refused: {message}");
        }
    }
});
