//! One module per subcommand. Each exposes `run(args, &Ctx)` returning a report; the AWS work
//! itself lives in `crate::resources`.

pub mod deploy_lambda;
pub mod iam_policy;
pub mod init;
pub mod logs;
pub mod push_image;
pub mod render;
pub mod setup;
pub mod status;
pub mod teardown;

use anyhow::Result;

use crate::aws::{Aws, ConnectOptions};
use crate::cli::GlobalArgs;
use crate::config::{self, Config};
use crate::error::UsageError;
use crate::progress::{Level, Progress};
use crate::resources::{Deployment, Names, queue};

/// What every command gets: the global flags and the progress reporter.
pub struct Ctx {
    pub global: GlobalArgs,
    pub progress: Progress,
}

impl Ctx {
    pub fn new(global: GlobalArgs) -> Ctx {
        let level = if global.quiet {
            Level::Quiet
        } else if global.verbose > 1 {
            Level::Trace
        } else if global.verbose > 0 {
            Level::Verbose
        } else {
            Level::Normal
        };
        Ctx {
            progress: Progress::new(level),
            global,
        }
    }

    /// The validated configuration, from `--config` / `LEW_CONFIG` or `./lew.toml`.
    pub fn config(&self) -> Result<Config> {
        if let Some(region) = &self.global.region {
            config::valid_region(region)
                .map_err(|why| UsageError::new(format!("--region {region:?}: {why}")))?;
        }
        Ok(Config::load(self.global.config.as_deref())?)
    }

    /// Flags override lew.toml, which overrides the AWS provider chain.
    pub fn connect_options(&self, cfg: &Config) -> ConnectOptions {
        ConnectOptions {
            profile: self.global.profile.clone().or_else(|| cfg.profile.clone()),
            region: self.global.region.clone().or_else(|| cfg.region.clone()),
            endpoint_url: self.global.endpoint_url.clone(),
            call_log: (self.progress.level() >= Level::Trace).then(|| self.progress.clone()),
        }
    }

    /// Validates the config, then connects to AWS and derives every resource name. The queues'
    /// URLs are looked up while STS says which account this is (their names need none).
    pub async fn deployment(&self) -> Result<Deployment> {
        let cfg = self.config()?;
        let opts = self.connect_options(&cfg);
        if let Some(profile) = &opts.profile
            && std::env::var_os("AWS_ACCESS_KEY_ID").is_some()
        {
            let from = if self.global.profile.is_some() {
                "--profile"
            } else {
                "lew.toml"
            };
            self.progress.line(format!(
                "using the profile {profile:?} ({from}); AWS_ACCESS_KEY_ID in the environment \
                 is not used"
            ));
        }
        let mut aws = Aws::prepare(&opts).await?;
        // Queue names need no account: they are looked up while STS answers.
        let early = Names::new(&cfg, "", &aws.region);
        let step = self.progress.step("connecting to AWS");
        // A failed whoami ends the wait at once: the look-ups would only retry against the same
        // endpoint.
        let (who, urls) = futures::future::try_join(aws.whoami(), async {
            Ok(queue::prefetch(&aws.sqs, &early).await)
        })
        .await?;
        step.clear();
        (aws.account, aws.partition) = who;
        Ok(Deployment::new(cfg, aws, self.progress.clone()).with_queue_urls(urls))
    }
}

/// The error of a command another issue has not delivered yet: an honest failure, exit 1.
pub fn not_available(command: &str) -> anyhow::Error {
    anyhow::anyhow!("`lew {command}` is not available yet in this version of lew")
}
