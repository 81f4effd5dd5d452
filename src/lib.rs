//! lew: deploy and run the S3 → Lambda → SQS → ECS Fargate worker pattern on AWS.
//!
//! `run` dispatches one subcommand; each lives in `commands/` and returns a report that
//! `output` prints as text or JSON. The AWS work lives in `resources/`, one module per resource.

pub mod aws;
pub mod cli;
pub mod commands;
pub mod config;
pub mod container;
pub mod embedded;
pub mod error;
pub mod ini;
pub mod job;
pub mod output;
pub mod parts;
pub mod povray;
pub mod pricing;
pub mod progress;
pub mod resources;
pub mod scene;
pub mod stitch;
pub mod transfer;
pub mod video;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::commands::Ctx;
use crate::output::emit;

/// Runs one command and returns the process exit code.
pub async fn run(cli: Cli) -> Result<u8> {
    let ctx = Ctx::new(cli.global);
    let format = ctx.global.output;
    match &cli.command {
        Command::Init(args) => emit(&commands::init::run(args, &ctx)?, format),
        Command::Setup(args) => emit(&commands::setup::run(args, &ctx).await?, format),
        Command::DeployLambda => emit(&commands::deploy_lambda::run(&ctx).await?, format),
        Command::PushImage(args) => emit(&commands::push_image::run(args, &ctx).await?, format),
        Command::Render(args) => emit(&commands::render::run(args, &ctx).await?, format),
        Command::Status => emit(&commands::status::run(&ctx).await?, format),
        Command::Logs(args) => emit(&commands::logs::run(args, &ctx).await?, format),
        Command::Teardown(args) => emit(&commands::teardown::run(args, &ctx).await?, format),
        Command::IamPolicy => emit(&commands::iam_policy::run(&ctx).await?, format),
    }
}
