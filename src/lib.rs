//! Tessera: a self-hostable control plane for managed databases and caches whose centre is
//! partner integrations over OAuth 2.0.
//!
//! The modules follow the parts of `design.md`.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo)]

pub mod accounts;
pub mod api;
pub mod app;
pub mod apps;
pub mod audit;
pub mod cli;
pub mod config;
pub mod console;
pub mod credentials;
pub mod dataplane;
pub mod grants;
pub mod http;
pub mod limits;
pub mod oauth;
pub mod ops;
pub mod store;
pub mod time;
