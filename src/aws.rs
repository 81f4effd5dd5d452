//! One `SdkConfig` from the AWS SDK's own provider chain, and the service clients built from it.
//!
//! Flags override lew.toml, which overrides the provider chain (AWS_PROFILE, AWS_REGION,
//! ~/.aws/config, SSO, AWS_ENDPOINT_URL). Nothing here is emulator-specific: pointing
//! AWS_ENDPOINT_URL (or --endpoint-url) at moto is how tests reach it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials as _;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_sts::config::ConfigBag;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    InterceptorContext,
};
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

use crate::error::{Brief, UsageError};
use crate::progress::Progress;

/// What the user asked for on the command line and in lew.toml.
#[derive(Debug, Default, Clone)]
pub struct ConnectOptions {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// With -vv: where to print every AWS call lew makes.
    pub call_log: Option<Progress>,
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
    /// Whether `--endpoint-url` chose the endpoint, to name it when nothing answers there.
    endpoint_flag: bool,
    /// Prints every call (-vv), on every client.
    call_log: Option<SharedInterceptor>,
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
    let sdk = loader.load().await;
    match &opts.profile {
        Some(profile) => with_profile_credentials(sdk, profile),
        None => sdk,
    }
}

/// The SDK's default credentials chain reads AWS_ACCESS_KEY_ID from the environment before any
/// profile, even one named with `profile_name` (aws-config's `DefaultCredentialsChain`: 1.
/// environment variables, 2. shared config), so `--profile other` would still sign with the
/// environment's keys: the wrong account, silently. The AWS CLI gives a named profile priority,
/// and so does lew: a profile named by `--profile` or in lew.toml is the only source of
/// credentials, through the SDK's own profile provider (static keys, roles, SSO, processes).
fn with_profile_credentials(sdk: SdkConfig, profile: &str) -> SdkConfig {
    let conf = ProviderConfig::default().with_region(sdk.region().cloned());
    let provider = ProfileFileCredentialsProvider::builder()
        .configure(&conf)
        .profile_name(profile)
        .build();
    sdk.into_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build()
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
        let call_log = opts
            .call_log
            .clone()
            .map(|p| SharedInterceptor::new(CallLog(p)));
        let mut aws = Aws::with_clients(sdk, region, String::new(), "aws".into(), call_log);
        aws.endpoint_flag = opts.endpoint_url.is_some();
        Ok(aws)
    }

    /// The caller's account and partition, from STS. This is lew's first call, so it is also
    /// the check that AWS can be reached at all: a connection that cannot be made (refused, no
    /// such host, no route, connect timeout) is tried twice rather than ten times, since it does
    /// not heal within seconds as throttling does, and is reported in one line naming the
    /// endpoint and where it came from (the SDK's cause chain follows with -v).
    pub async fn whoami(&self) -> Result<(String, String)> {
        let seen = SeenEndpoint::default();
        let mut conf = aws_sdk_sts::config::Builder::from(&self.sdk);
        if let Some(log) = &self.call_log {
            conf.push_interceptor(log.clone());
        }
        let sts = aws_sdk_sts::Client::from_conf(
            conf.interceptor(seen.clone())
                .retry_classifier(NoRetryWithoutConnection)
                .build(),
        );
        let mut sent = sts.get_caller_identity().send().await;
        if sent.as_ref().is_err_and(|e| cannot_connect(e)) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            sent = sts.get_caller_identity().send().await;
        }
        let me = match sent {
            Ok(me) => me,
            Err(e) if cannot_connect(&e) => {
                let message = self.unreachable(&seen.get(), &e);
                return Err(anyhow::Error::new(e).context(Brief(message)));
            }
            Err(e) => {
                return Err(e)
                    .context("cannot reach AWS STS to identify the account (GetCallerIdentity)");
            }
        };
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

    /// "cannot reach AWS at URL (from SOURCE): REASON; HINT", for a call that could not connect.
    fn unreachable(&self, url: &str, err: &(dyn std::error::Error + 'static)) -> String {
        let url = url.trim_end_matches('/');
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let env_ignored = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let host = url.split("://").nth(1).unwrap_or(url);
        let aws_host = host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn");
        // The flag wins over the variables, which win over the config file (AWS's "Service-
        // specific endpoints" order); the variable named is the one holding the URL used.
        let source = if self.endpoint_flag {
            "--endpoint-url".to_string()
        } else if let Some(var) = ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"]
            .into_iter()
            .find(|v| !env_ignored && env(v).is_some_and(|u| u.trim_end_matches('/') == url))
        {
            var.to_string()
        } else if aws_host {
            format!("the default endpoint of region {}", self.region)
        } else {
            "endpoint_url in the AWS config file".to_string()
        };
        // The innermost cause says what happened: "Connection refused (os error 111)", "failed
        // to lookup address information: ...", "HTTP connect timeout occurred after 5s".
        let mut reason = err.to_string();
        let mut next = err.source();
        while let Some(e) = next {
            reason = e.to_string();
            next = e.source();
        }
        let hint = if aws_host {
            "check the network connection (and HTTPS_PROXY if you need a proxy)"
        } else {
            "is the service (an emulator?) running there, and is the URL right?"
        };
        format!("cannot reach AWS at {url} (from {source}): {reason}; {hint}")
    }

    /// Builds the clients for a known account; also what unit tests with mocked clients use.
    pub fn from_parts(sdk: SdkConfig, region: String, account: String, partition: String) -> Aws {
        Aws::with_clients(sdk, region, account, partition, None)
    }

    fn with_clients(
        sdk: SdkConfig,
        region: String,
        account: String,
        partition: String,
        call_log: Option<SharedInterceptor>,
    ) -> Aws {
        // A custom endpoint (an emulator, a proxy) serves every bucket on one host, so S3 must
        // put the bucket in the path rather than in the host name.
        let custom_endpoint =
            sdk.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        // Each service's config from the shared one, with the call log when there is one.
        macro_rules! client {
            ($krate:ident $(, $setting:ident($value:expr))*) => {{
                let mut conf = $krate::config::Builder::from(&sdk);
                if let Some(log) = &call_log {
                    conf.push_interceptor(log.clone());
                }
                $krate::Client::from_conf(conf$(.$setting($value))*.build())
            }};
        }
        Aws {
            iam: client!(aws_sdk_iam),
            s3: client!(aws_sdk_s3, force_path_style(custom_endpoint)),
            sqs: client!(aws_sdk_sqs),
            lambda: client!(aws_sdk_lambda),
            ecs: client!(aws_sdk_ecs),
            ecr: client!(aws_sdk_ecr),
            events: client!(aws_sdk_eventbridge),
            logs: client!(aws_sdk_cloudwatchlogs),
            ec2: client!(aws_sdk_ec2),
            tagging: client!(aws_sdk_resourcegroupstagging),
            sdk,
            region,
            account,
            partition,
            endpoint_flag: false,
            call_log,
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

/// Whether a call failed because no connection could be made: refused, no such host, no route,
/// a connect timeout or a failed TLS handshake (the HTTP client's typed connect error), as
/// opposed to throttling, a server error or a connection dropped mid-request.
pub fn cannot_connect(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(|h| h.is_connect())
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// For the reachability check: a connection that cannot be made is not retried by the SDK
/// (lew tries once more itself), while throttling and dropped connections keep the standard
/// retries. Runs after the SDK's transient-error classifier, which would retry it.
#[derive(Debug)]
struct NoRetryWithoutConnection;

impl ClassifyRetry for NoRetryWithoutConnection {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.output_or_error() {
            Some(Err(e)) if e.as_connector_error().is_some_and(|c| cannot_connect(c)) => {
                RetryAction::RetryForbidden
            }
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "lew: no SDK retry when no connection can be made"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// Prints every AWS call as lew makes it (-vv): `aws call: SQS GetQueueUrl`, once per call
/// however often the SDK retries it. The list of calls `lew iam-policy` grants is checked
/// against these lines.
#[derive(Debug)]
struct CallLog(Progress);

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "lew: call log"
    }

    // Once per call, after the operation's config (which names it) is in place; before
    // execution a client's interceptor runs ahead of it.
    fn read_before_serialization(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(op) = cfg.load::<Metadata>() {
            self.0
                .trace(format!("{CALL_PREFIX}{} {}", op.service(), op.name()));
        }
        Ok(())
    }
}

/// How a call is printed with -vv: this, the service as the SDK names it, the operation.
pub const CALL_PREFIX: &str = "aws call: ";

/// Remembers the URL a request was sent to, so an unreachable endpoint can be named exactly,
/// whichever of the flag, the environment, the config file or the region chose it.
#[derive(Debug, Default, Clone)]
struct SeenEndpoint(Arc<Mutex<String>>);

impl SeenEndpoint {
    fn get(&self) -> String {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Intercept for SeenEndpoint {
    fn name(&self) -> &'static str {
        "lew: remember the endpoint"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let uri = ctx.request().uri();
        // Scheme and host (and port): the path and query are the operation's, not the endpoint's.
        let end = uri
            .find("://")
            .map(|i| i + 3)
            .and_then(|start| uri[start..].find('/').map(|p| start + p))
            .unwrap_or(uri.len());
        if let Ok(mut seen) = self.0.lock() {
            *seen = uri[..end].to_string();
        }
        Ok(())
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
        // The chain ends with the EC2 instance metadata service. Off EC2 it usually cannot be
        // reached (then the chain says "not loaded"), but on many laptops something answers
        // that address (a VPN, a proxy, a sandbox) and the chain fails with IMDS's error,
        // "failed to load IMDS session token". Nothing earlier in the chain had credentials
        // either, so that is the same missing-credentials case, with IMDS's answer kept.
        Err(e) if from_imds(&e) => {
            let why = crate::error::one_line(&anyhow::Error::new(e));
            Err(UsageError::new(format!(
                "{} (the EC2 instance metadata service, the last place the SDK looks, gave \
                 none either: {why})",
                no_credentials()
            ))
            .into())
        }
        Err(e) => Err(anyhow::Error::new(e).context(
            "cannot load AWS credentials (for an SSO profile, run `aws sso login` first)",
        )),
    }
}

/// Whether a credentials error came from the EC2 instance metadata service (IMDS's typed
/// error is in its chain), or the chain ran out of time, which only an IMDS that never
/// answers makes it do.
fn from_imds(err: &CredentialsError) -> bool {
    if matches!(err, CredentialsError::ProviderTimedOut(_)) {
        return true;
    }
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        if e.is::<aws_config::imds::client::error::ImdsError>() {
            return true;
        }
        next = e.source();
    }
    false
}

fn no_credentials() -> UsageError {
    UsageError::new(
        "no AWS credentials found: set AWS_PROFILE (or pass --profile) to a configured profile, \
         run `aws configure` or `aws sso login`, or set AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY",
    )
}
