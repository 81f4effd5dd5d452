//! lew's integration tests: one binary (it links once) with a module per area. They run the
//! real `lew` binary against the moto server `scripts/test` starts.

mod support;

mod cli;
mod image;
mod lifecycle;
mod render_local;
