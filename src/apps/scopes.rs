//! Scopes (design.md "Scopes"). A `:write` scope does not imply its `:read`.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    CachesRead,
    CachesWrite,
    CacheRulesRead,
    CacheRulesWrite,
    DatabasesRead,
    DatabasesWrite,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::CachesRead,
        Scope::CachesWrite,
        Scope::CacheRulesRead,
        Scope::CacheRulesWrite,
        Scope::DatabasesRead,
        Scope::DatabasesWrite,
    ];

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::CachesRead => "caches:read",
            Scope::CachesWrite => "caches:write",
            Scope::CacheRulesRead => "cacheRules:read",
            Scope::CacheRulesWrite => "cacheRules:write",
            Scope::DatabasesRead => "databases:read",
            Scope::DatabasesWrite => "databases:write",
        }
    }

    /// What the scope allows, in plain words, for the consent screen.
    pub const fn description(self) -> &'static str {
        match self {
            Scope::CachesRead => "View your caches",
            Scope::CachesWrite => "Create, update and delete your caches",
            Scope::CacheRulesRead => "View your cache rules",
            Scope::CacheRulesWrite => "Create, update and delete your cache rules",
            Scope::DatabasesRead => "View your databases and their connection details",
            Scope::DatabasesWrite => "Create and delete your databases",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest `scope` parameter accepted: every scope Tessera knows, repeated several times
/// over, fits easily.
pub const MAX_SCOPE_LEN: usize = 1024;
const MAX_SCOPE_NAME_SHOWN: usize = 64;

/// A set of scopes, kept in a fixed order so that its string form is canonical.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    /// Parses a space-separated list (RFC 6749 §3.3). An unknown scope is an error naming it;
    /// a list longer than [`MAX_SCOPE_LEN`] is refused before it is looked at.
    pub fn parse(text: &str) -> Result<ScopeSet, String> {
        if text.len() > MAX_SCOPE_LEN {
            return Err(format!("scope is longer than {MAX_SCOPE_LEN} characters"));
        }
        Self::from_names(text.split(' ').filter(|s| !s.is_empty()))
    }

    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<ScopeSet, String> {
        let mut scopes = Vec::new();
        for name in names {
            let scope = Scope::parse(name).ok_or_else(|| {
                // The name is echoed back (in a redirect, too): never at any length.
                let shown: String = name.chars().take(MAX_SCOPE_NAME_SHOWN).collect();
                let more = if shown.len() < name.len() { "…" } else { "" };
                format!("unknown scope {shown:?}{more}")
            })?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        scopes.sort();
        Ok(ScopeSet(scopes))
    }

    /// Reads a set this code stored; anything unknown in the database is dropped, never widened.
    pub fn from_stored(text: &str) -> ScopeSet {
        let mut scopes: Vec<Scope> = text.split(' ').filter_map(Scope::parse).collect();
        scopes.sort();
        scopes.dedup();
        ScopeSet(scopes)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.0.iter().all(|s| other.contains(*s))
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|s| s.as_str()).collect()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_sets_parse_canonically_and_refuse_unknown_names() {
        let set = ScopeSet::parse("databases:write  caches:read caches:read").expect("valid");
        assert_eq!(set.to_string(), "caches:read databases:write");
        assert!(ScopeSet::parse("caches:read admin").is_err());
        assert!(ScopeSet::parse("Caches:read").is_err(), "scopes are case-sensitive");
        assert!(ScopeSet::parse("").expect("empty is a set").is_empty());
        let long = "caches:read ".repeat(100);
        assert!(ScopeSet::parse(&long).expect_err("too long").contains("longer than 1024"));
        let error = ScopeSet::parse(&"x".repeat(1000)).expect_err("unknown");
        assert!(error.len() < 100, "{error}");
    }

    #[test]
    fn write_does_not_imply_read() {
        let set = ScopeSet::parse("caches:write").expect("valid");
        assert!(!set.contains(Scope::CachesRead));
        assert!(ScopeSet::parse("caches:write").expect("v").is_subset_of(&set));
        assert!(!ScopeSet::parse("caches:read").expect("v").is_subset_of(&set));
    }
}
