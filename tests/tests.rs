//! lew's integration tests: one binary (it links once) with a module per area. They run the
//! real `lew` binary against the moto server `scripts/test` starts.

mod support;

mod aws_rules;
mod cli;
mod existing_resources;
mod generated;
mod image;
mod json_output;
mod launcher_wiring;
mod lifecycle;
mod render;
mod render_farm;
mod render_local;
mod security;
