//! Parsing the fields people type into the types the rest of the code trusts.

use super::AccountError;

/// A plausible email address, trimmed and lower-cased so that one person has one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Email, AccountError> {
        let email = input.trim().to_lowercase();
        let invalid = || AccountError::invalid("email", "enter an email address such as name@example.com");
        if email.is_empty() || email.len() > 254 {
            return Err(invalid());
        }
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let well_formed = !local.is_empty()
            && local.len() <= 64
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && !email.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | ','));
        if well_formed {
            Ok(Email(email))
        } else {
            Err(invalid())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display name for a person or a workspace: 1 to 80 characters, no control characters.
pub fn display_name(field: &'static str, input: &str) -> Result<String, AccountError> {
    let name = input.trim();
    let chars = name.chars().count();
    if chars == 0 {
        return Err(AccountError::invalid(field, "must not be empty"));
    }
    if chars > 80 {
        return Err(AccountError::invalid(field, "must be at most 80 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(AccountError::invalid(field, "must not contain control characters"));
    }
    Ok(name.to_owned())
}

pub fn new_password(input: &str) -> Result<String, AccountError> {
    let chars = input.chars().count();
    if chars < super::passwords::MIN_PASSWORD_CHARS {
        return Err(AccountError::invalid("password", "must be at least 10 characters"));
    }
    if chars > super::passwords::MAX_PASSWORD_CHARS {
        return Err(AccountError::invalid("password", "must be at most 1024 characters"));
    }
    Ok(input.to_owned())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    pub fn parse(input: &str) -> Result<Role, AccountError> {
        match input.trim() {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            _ => Err(AccountError::invalid("role", "must be owner, admin or member")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// Owners and admins manage a workspace: its members, apps and keys.
    pub fn can_manage(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse("  Ada@Example.COM ").expect("valid").as_str(), "ada@example.com");
        for bad in ["", "ada", "ada@", "@example.com", "ada@example", "a da@example.com", "a@b@c.com", "ada@.com"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn names_and_passwords_have_bounds() {
        assert!(display_name("name", "  ").is_err());
        assert!(display_name("name", &"x".repeat(81)).is_err());
        assert_eq!(display_name("name", " Ada ").expect("valid"), "Ada");
        assert!(new_password("short").is_err());
        assert!(new_password("long enough!").is_ok());
    }
}
