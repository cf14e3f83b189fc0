//! One integration-test binary (one link on a two-core machine). Only `mod` lines here.

mod helpers;

mod accounts;
mod apps;
mod audit;
mod browser;
mod cli;
mod oauth;
mod ops;
mod revocation;
mod workspaces;
