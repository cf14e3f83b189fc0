//! One integration-test binary (one link on a two-core machine). Only `mod` lines here.

mod helpers;

mod accounts;
mod apps;
mod audit;
mod browser;
mod cli;
mod console_resources;
mod crash;
mod dataplane;
mod fuzz_findings;
mod limits;
mod oauth;
mod ops;
mod partner_app;
mod partner_guide;
mod resources;
mod revocation;
mod workspaces;
