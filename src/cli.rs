//! The command line: global flags and one subcommand per verb of the brief.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "lew",
    version,
    about = "Deploy and run the S3 → Lambda → SQS → ECS Fargate worker pattern on AWS",
    long_about = "Deploy and run the S3 → Lambda → SQS → ECS Fargate worker pattern on AWS.\n\n\
                  Upload a POV-Ray scene, a Lambda queues a job and starts a Fargate task, the \
                  task renders and writes the image back to S3.\n\n\
                  Typical use: `lew init`, `lew setup`, `lew push-image`, `lew render scene.zip`, \
                  `lew teardown`.",
    propagate_version = true,
    max_term_width = 100,
    after_long_help = "Exit codes: 0 success; 1 the operation failed; 2 usage or configuration \
                       error (nothing was changed); 3 `render` timed out (the jobs keep running); \
                       4 `status` found a resource missing or drifted; 130 interrupted while \
                       waiting (the jobs keep running)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The flags every command takes, listed apart from each command's own in its help.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Configuration file [default: ./lew.toml; a missing default file means all defaults]
    #[arg(long, global = true, env = "LEW_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// AWS profile (overrides `profile` in lew.toml and AWS_PROFILE)
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,

    /// AWS region (overrides `region` in lew.toml and AWS_REGION)
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,

    /// Send every AWS call to this endpoint, e.g. a local emulator (also AWS_ENDPOINT_URL)
    #[arg(long, global = true, value_name = "URL", value_parser = parse_endpoint)]
    pub endpoint_url: Option<String>,

    /// Result format on stdout; json prints exactly one JSON document
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,

    /// More progress detail on stderr; -vv also every AWS call lew makes
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// No progress on stderr, only results and errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Colour: auto (on a terminal, unless NO_COLOR is set), always or never
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented lew.toml with every default filled in
    #[command(after_help = examples::INIT)]
    Init(InitArgs),
    /// Create or converge every AWS resource; safe to re-run
    #[command(after_help = examples::SETUP)]
    Setup(SetupArgs),
    /// Zip the embedded launcher and create or update the Lambda function
    #[command(after_help = examples::DEPLOY_LAMBDA)]
    DeployLambda,
    /// Build the worker image, push it to ECR and register a task definition pinned by digest
    #[command(after_help = examples::PUSH_IMAGE)]
    PushImage(PushImageArgs),
    /// Upload scenes, wait for the renders and download the images
    #[command(after_help = examples::RENDER)]
    Render(RenderArgs),
    /// Show every resource (present / missing / drifted), queue depths and running tasks;
    /// exit 4 when a resource is missing or drifted
    #[command(after_help = examples::STATUS)]
    Status,
    /// Show the CloudWatch logs of the launcher or the worker
    #[command(after_help = examples::LOGS)]
    Logs(LogsArgs),
    /// Delete everything setup created (the bucket and its data only with --delete-data)
    #[command(after_help = examples::TEARDOWN)]
    Teardown(TeardownArgs),
    /// Print the least-privilege IAM policy a CI deploy role needs for setup, deploy-lambda,
    /// push-image and status of this app
    #[command(after_help = examples::IAM_POLICY)]
    IamPolicy,
}

/// The examples at the end of each command's help, as `cargo help` and `sam --help` end with
/// them. A test parses every `lew ...` line here, so none can go stale.
mod examples {
    pub const INIT: &str = "\
Examples:
  lew init                                    write ./lew.toml with every default
  lew --config prod.toml init                 write prod.toml instead";
    pub const SETUP: &str = "\
Examples:
  lew setup --dry-run                         what would be created or changed, changing nothing
  lew setup                                   create what is missing, repair what drifted
  lew --profile prod --region eu-west-1 setup
                                              in another account and region";
    pub const DEPLOY_LAMBDA: &str = "\
Examples:
  lew deploy-lambda                           only the launcher function (code and settings)";
    pub const PUSH_IMAGE: &str = "\
Examples:
  lew push-image                              build and push the worker (skipped if unchanged)
  lew push-image --tag v2                     under a tag of your choice
  lew --output json push-image                for CI: one JSON document on stdout";
    pub const RENDER: &str = "\
Examples:
  lew render scene.zip                        render in the cloud, wait, download scene.png
  lew render assets/lew-demo --out images     zip a scene folder on the fly; image in images/
  lew render a.zip b.zip --no-wait            upload both and return; they render meanwhile
  lew render --local scene.zip                render on this machine with a local povray";
    pub const STATUS: &str = "\
Examples:
  lew status                                  what exists, queue depths, recent renders
  lew --output json status                    the same as one JSON document (exit 4 if not
                                              everything is in place)";
    pub const LOGS: &str = "\
Examples:
  lew logs                                    the worker's lines of the last 10 minutes
  lew logs launcher --since 1h                what the launcher did in the last hour
  lew logs worker --follow --job 20261127-232330-644189
                                              one job's lines, as they come";
    pub const TEARDOWN: &str = "\
Examples:
  lew teardown                                lists what goes and what stays, then asks
  lew teardown --yes --delete-data            everything, the bucket and its data too (CI)";
    pub const IAM_POLICY: &str = "\
Examples:
  lew iam-policy > deploy-policy.json         the policy of the app in ./lew.toml
  lew --config prod.toml iam-policy           of another app (and account, with --profile)";
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Overwrite an existing file
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Print what would be created or updated, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct PushImageArgs {
    /// Image tag [default: derived from the embedded worker sources, so an unchanged worker is
    /// not rebuilt]
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Scene .zip files, or folders to zip on the fly
    #[arg(required_unless_present = "job", value_name = "FILE_OR_DIR")]
    pub scenes: Vec<PathBuf>,

    /// Wait for a job submitted earlier (interrupted, timed out, or --no-wait) and download
    /// what it produced; its scenes and their plans are read back from the bucket
    #[arg(long, value_name = "ID", conflicts_with_all = [
        "scenes", "local", "no_wait", "keep_going", "frames", "split", "jobs",
    ])]
    pub job: Option<String>,

    /// Where to write the images
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,

    /// Give up waiting after this long (e.g. 90s, 30m, 2h); the jobs keep running
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30m")]
    pub timeout: Duration,

    /// Upload and return at once, printing the job ids and output keys
    #[arg(long, conflicts_with = "local")]
    pub no_wait: bool,

    /// Render on this machine with a local povray; no AWS at all
    #[arg(long)]
    pub local: bool,

    /// Overwrite existing images in --out
    #[arg(long)]
    pub force: bool,

    /// Upload the valid scenes even when some are invalid
    #[arg(long)]
    pub keep_going: bool,

    /// Render only these frames of an animation (e.g. 10-20, or 7)
    #[arg(long, value_name = "RANGE", value_parser = crate::parts::parse_frames)]
    pub frames: Option<(i64, i64)>,

    /// Render a still in N horizontal bands on N workers, stitched into one image
    /// [default: worker.split in lew.toml]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub split: Option<u32>,

    /// Assemble an animation's frames into a video with ffmpeg (.mp4, .gif or .webm)
    #[arg(long, value_name = "FILE", conflicts_with = "no_wait")]
    pub video: Option<PathBuf>,

    /// Frames per second of --video
    #[arg(long, value_name = "N", default_value_t = 24, requires = "video",
          value_parser = clap::value_parser!(u32).range(1..=240))]
    pub fps: u32,

    /// Local POV-Ray processes at once with --local [default: the number of CPUs]
    #[arg(long, value_name = "N", requires = "local",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub jobs: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogSource {
    Launcher,
    Worker,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Whose logs
    #[arg(value_enum, default_value_t = LogSource::Worker)]
    pub source: LogSource,

    /// Keep printing new events until interrupted
    #[arg(short, long)]
    pub follow: bool,

    /// How far back to start (e.g. 10m, 2h, 1d)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10m")]
    pub since: Duration,

    /// Only the lines of this render job
    #[arg(long, value_name = "ID")]
    pub job: Option<String>,
}

#[derive(Debug, Args)]
pub struct TeardownArgs {
    /// Do not ask for confirmation (for CI)
    #[arg(short, long)]
    pub yes: bool,

    /// Also empty and delete the bucket with every scene and render in it
    #[arg(long)]
    pub delete_data: bool,
}

/// An endpoint URL: `http://` or `https://` and a host, as the SDK needs it.
fn parse_endpoint(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
        .ok_or("expected a URL starting with http:// or https://, e.g. http://localhost:5000")?;
    if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
        return Err("expected a URL with a host, e.g. http://localhost:5000".into());
    }
    Ok(text.to_string())
}

/// Parses durations like `90s`, `30m`, `2h`, `1d`, `1h30m` (humantime's forms) or a bare
/// number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
        text.parse()
            .map(Duration::from_secs)
            .map_err(|_| format!("{text:?} is too large a number of seconds"))?
    } else {
        humantime::parse_duration(text)
            .map_err(|e| format!("{text:?} is not a duration ({e}); use e.g. 90s, 30m, 2h or 1d"))?
    };
    if duration.is_zero() {
        return Err("the duration must be more than zero".into());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_ends_its_help_with_examples_that_parse() {
        let cli = Cli::command();
        for sub in cli.get_subcommands() {
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            let examples: Vec<&str> = help
                .lines()
                .filter_map(|l| l.trim_start().strip_prefix("lew "))
                .collect();
            assert!(
                !examples.is_empty(),
                "lew {} has no examples",
                sub.get_name()
            );
            for example in examples {
                // The command is what comes before the comment column (two spaces or more),
                // without a shell's redirection.
                let command = example.split("  ").next().unwrap();
                let command = command.split(" > ").next().unwrap();
                let args = std::iter::once("lew").chain(command.split_whitespace());
                if let Err(e) = Cli::try_parse_from(args) {
                    panic!("the example `lew {command}` does not parse: {e}");
                }
            }
        }
    }

    #[test]
    fn global_options_are_listed_apart_from_the_commands_own() {
        let mut cli = Cli::command();
        cli.build();
        let help = cli
            .find_subcommand_mut("render")
            .unwrap()
            .render_long_help()
            .to_string();
        let (own, global) = help
            .split_once("Global options:")
            .unwrap_or_else(|| panic!("no \"Global options:\" heading in:\n{help}"));
        assert!(
            own.contains("--out <DIR>") && !own.contains("--profile"),
            "{help}"
        );
        assert!(
            global.contains("--profile") && !global.contains("--out <DIR>"),
            "{help}"
        );
        assert!(help.contains("Examples:\n  lew render scene.zip"), "{help}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("0s").is_err());
    }
}
