//! One grant type per file, each validating its own fields and then issuing in one transaction.

pub mod authorization_code;
pub mod refresh_token;
