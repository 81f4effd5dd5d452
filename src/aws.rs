//! One `SdkConfig` from the AWS SDK's own provider chain, and the service clients built from it.
//!
//! Flags override lew.toml, which overrides the provider chain (AWS_PROFILE, AWS_REGION,
//! ~/.aws/config, SSO, AWS_ENDPOINT_URL). Nothing here is emulator-specific: pointing
//! AWS_ENDPOINT_URL (or --endpoint-url) at moto is how tests reach it.

use std::time::Duration;

use anyhow::{Context as _, Result};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials as _;
use aws_credential_types::provider::error::CredentialsError;

use crate::error::UsageError;

/// What the user asked for on the command line and in lew.toml.
#[derive(Debug, Default, Clone)]
pub struct ConnectOptions {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

/// A connected AWS session: the shared config, the caller's account, and one client per service.
#[derive(Clone, Debug)]
pub struct Aws {
    pub sdk: SdkConfig,
    pub region: String,
    pub account: String,
    /// `aws`, `aws-cn` or `aws-us-gov`, taken from the caller's ARN, for building ARNs.
    pub partition: String,
    pub iam: aws_sdk_iam::Client,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub tagging: aws_sdk_resourcegroupstagging::Client,
}

/// Attempts per AWS call (the first and nine retries), see [`sdk_config`].
pub const MAX_ATTEMPTS: u32 = 10;

/// Builds the shared SDK configuration. No network call is made here.
pub async fn sdk_config(opts: &ConnectOptions) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .app_name(AppName::new("lew").expect("a valid app name"))
        // Standard mode with more attempts than the default three: setup makes many calls and
        // should ride out throttling and brief outages; backoff stays short so a flaky call
        // costs little. With six attempts, a call failing at 20 % (the reliability loop's fault
        // rate) still gave up once in ~15,000 calls, about once per full loop; with ten, once in
        // ten million.
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(5)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(profile) = &opts.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &opts.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &opts.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

impl Aws {
    /// Loads the configuration, checks that a region and credentials exist (a usage error
    /// with the fix if not), and asks STS who the caller is.
    pub async fn connect(opts: &ConnectOptions) -> Result<Aws> {
        let mut aws = Aws::prepare(opts).await?;
        (aws.account, aws.partition) = aws.whoami().await?;
        Ok(aws)
    }

    /// [`Aws::connect`] without the STS call: the clients, with the account still unknown
    /// (empty), for work that needs no account while [`Aws::whoami`] runs.
    pub async fn prepare(opts: &ConnectOptions) -> Result<Aws> {
        let sdk = sdk_config(opts).await;
        // The profile in use, if one was named: the likeliest cause of what is missing.
        let profile = opts
            .profile
            .clone()
            .or_else(|| std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()));
        let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| {
            UsageError::new(match &profile {
                Some(p) => format!(
                    "no AWS region is configured, and the profile {p:?} names none (is it \
                     spelled as in ~/.aws/config?): set `region` in lew.toml, pass --region, \
                     set AWS_REGION, or give the profile a region"
                ),
                None => "no AWS region is configured: set `region` in lew.toml, pass --region, \
                         or set AWS_REGION (or a region in your AWS profile)"
                    .to_string(),
            })
        })?;
        check_credentials(&sdk, profile.as_deref()).await?;
        Ok(Aws::from_parts(sdk, region, String::new(), "aws".into()))
    }

    /// The caller's account and partition, from STS.
    pub async fn whoami(&self) -> Result<(String, String)> {
        let sts = aws_sdk_sts::Client::new(&self.sdk);
        let me = sts
            .get_caller_identity()
            .send()
            .await
            .context("cannot reach AWS STS to identify the account (GetCallerIdentity)")?;
        let account = me
            .account()
            .context("STS returned no account id")?
            .to_string();
        let partition = me
            .arn()
            .and_then(|arn| arn.split(':').nth(1))
            .filter(|p| !p.is_empty())
            .unwrap_or("aws")
            .to_string();
        Ok((account, partition))
    }

    /// Builds the clients for a known account; also what unit tests with mocked clients use.
    pub fn from_parts(sdk: SdkConfig, region: String, account: String, partition: String) -> Aws {
        // A custom endpoint (an emulator, a proxy) serves every bucket on one host, so S3 must
        // put the bucket in the path rather than in the host name.
        let custom_endpoint =
            sdk.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(custom_endpoint)
                .build(),
        );
        Aws {
            iam: aws_sdk_iam::Client::new(&sdk),
            s3,
            sqs: aws_sdk_sqs::Client::new(&sdk),
            lambda: aws_sdk_lambda::Client::new(&sdk),
            ecs: aws_sdk_ecs::Client::new(&sdk),
            ecr: aws_sdk_ecr::Client::new(&sdk),
            events: aws_sdk_eventbridge::Client::new(&sdk),
            logs: aws_sdk_cloudwatchlogs::Client::new(&sdk),
            ec2: aws_sdk_ec2::Client::new(&sdk),
            tagging: aws_sdk_resourcegroupstagging::Client::new(&sdk),
            sdk,
            region,
            account,
            partition,
        }
    }

    /// `arn:<partition>:<service>:<region>:<account>:<resource>`.
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            self.partition, self.region, self.account
        )
    }

    /// IAM ARNs have no region.
    pub fn iam_arn(&self, resource: &str) -> String {
        format!("arn:{}:iam::{}:{resource}", self.partition, self.account)
    }

    /// S3 ARNs have neither region nor account.
    pub fn s3_arn(&self, resource: &str) -> String {
        format!("arn:{}:s3:::{resource}", self.partition)
    }
}

async fn check_credentials(sdk: &SdkConfig, profile: Option<&str>) -> Result<()> {
    let Some(provider) = sdk.credentials_provider() else {
        return Err(no_credentials().into());
    };
    let result = provider.provide_credentials().await;
    // With a profile named, a failure is the profile's (misspelt, no keys, SSO session
    // expired): a problem of configuration, not of AWS. The chain's own error follows.
    if let (Err(e), Some(p)) = (&result, profile) {
        let usage = UsageError::new(format!(
            "cannot load AWS credentials for the profile {p:?}: check that it is in \
             ~/.aws/config or ~/.aws/credentials with keys or a role, or for SSO run \
             `aws sso login --profile {p}`"
        ));
        return Err(match e {
            CredentialsError::CredentialsNotLoaded(_) => usage.into(),
            _ => anyhow::Error::new(result.unwrap_err()).context(usage),
        });
    }
    match result {
        Ok(_) => Ok(()),
        Err(CredentialsError::CredentialsNotLoaded(_)) => Err(no_credentials().into()),
        Err(e) => Err(anyhow::Error::new(e).context(
            "cannot load AWS credentials (for an SSO profile, run `aws sso login` first)",
        )),
    }
}

fn no_credentials() -> UsageError {
    UsageError::new(
        "no AWS credentials found: set AWS_PROFILE (or pass --profile) to a configured profile, \
         run `aws configure` or `aws sso login`, or set AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY",
    )
}
