//! lew's integration tests: one binary (it links once) with a module per area. They run the
//! real `lew` binary against the moto server `scripts/test` starts.

mod support;

mod aws_rules;
mod ci;
mod cli;
mod connect;
mod existing_resources;
mod generated;
mod image;
mod json_output;
mod launcher_wiring;
mod lifecycle;
mod reconcile;
mod render;
mod render_farm;
mod render_local;
mod security;
mod terminal;
mod transfer;
