//! Deployments for unit tests whose AWS clients answer from `aws-smithy-mocks` rules instead of
//! the network: for the error paths an emulator cannot produce (throttling, eventual
//! consistency, races with another setup or teardown).
//!
//! The clients use lew's own SDK configuration (`aws::sdk_config`: retry mode, attempts and
//! backoff) with a mock HTTP client and an instant sleep that records every wait, so the SDK's
//! retries and lew's own backoffs cost no real time and can be checked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::identity::IdentityCache;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_sqs::config::{AsyncSleep, Sleep};
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client};
use aws_smithy_types::error::ErrorMetadata;

use super::Deployment;
use crate::aws::{Aws, ConnectOptions, sdk_config};
use crate::config::Config;
use crate::progress::Progress;

pub const APP: &str = "unit";
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "eu-west-1";

/// A sleep that returns at once and remembers how long it was asked to wait.
#[derive(Debug, Clone, Default)]
pub struct InstantSleep {
    slept: Arc<Mutex<Vec<Duration>>>,
}

impl InstantSleep {
    /// Every wait so far, in order.
    pub fn slept(&self) -> Vec<Duration> {
        self.slept.lock().unwrap().clone()
    }
}

impl AsyncSleep for InstantSleep {
    fn sleep(&self, duration: Duration) -> Sleep {
        self.slept.lock().unwrap().push(duration);
        Sleep::new(std::future::ready(()))
    }
}

/// Error metadata as a service sends it: a code and a message.
pub fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

/// Rules for each service; every call must match the next rule of its service, in order
/// ([`RuleMode::Sequential`]), and a call no rule expects fails the test.
#[derive(Default)]
pub struct Mocks {
    cfg: String,
    iam: Vec<Rule>,
    sqs: Vec<Rule>,
    lambda: Vec<Rule>,
    ecr: Vec<Rule>,
    logs: Vec<Rule>,
    ec2: Vec<Rule>,
    tagging: Vec<Rule>,
    ecs: Vec<Rule>,
    s3: Vec<Rule>,
}

macro_rules! service {
    ($name:ident) => {
        pub fn $name(mut self, rules: &[&Rule]) -> Mocks {
            self.$name.extend(rules.iter().map(|r| (*r).clone()));
            self
        }
    };
}

impl Mocks {
    pub fn new() -> Mocks {
        Mocks::default()
    }

    /// Extra lew.toml text after `app = "unit"`.
    pub fn config(mut self, toml: &str) -> Mocks {
        self.cfg = toml.to_string();
        self
    }

    service!(iam);
    service!(sqs);
    service!(lambda);
    service!(ecr);
    service!(logs);
    service!(ec2);
    service!(tagging);
    service!(ecs);
    service!(s3);

    /// The deployment, and the sleep that records its waits.
    pub async fn deployment(self) -> (Deployment, InstantSleep) {
        let sleep = InstantSleep::default();
        let sdk = sdk_config(&ConnectOptions {
            region: Some(REGION.into()),
            ..ConnectOptions::default()
        })
        .await
        .into_builder()
        .http_client(create_mock_http_client())
        .sleep_impl(sleep.clone())
        // The SDK races every call against a timeout on the same sleep; with an instant sleep
        // those would fire at once, and they are not waits worth recording.
        .timeout_config(TimeoutConfig::disabled())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .identity_cache(IdentityCache::no_cache())
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDUNIT", "secret", None, None, "unit",
        )))
        .build();
        let mut aws = Aws::from_parts(sdk.clone(), REGION.into(), ACCOUNT.into(), "aws".into());
        aws.iam = aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(&sdk)
                .interceptor(interceptor(&self.iam))
                .build(),
        );
        aws.sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&sdk)
                .interceptor(interceptor(&self.sqs))
                .build(),
        );
        aws.lambda = aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(&sdk)
                .interceptor(interceptor(&self.lambda))
                .build(),
        );
        aws.ecr = aws_sdk_ecr::Client::from_conf(
            aws_sdk_ecr::config::Builder::from(&sdk)
                .interceptor(interceptor(&self.ecr))
                .build(),
        );
        aws.logs = aws_sdk_cloudwatchlogs::Client::from_conf(
            aws_sdk_cloudwatchlogs::config::Builder::from(&sdk)
                .interceptor(interceptor(&self.logs))
                .build(),
        );
        aws.ec2 = aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::config::Builder::from(&sdk)
                .interceptor(interceptor(&self.ec2))
                .build(),
        );
        aws.tagging = aws_sdk_resourcegroupstagging::Client::from_conf(
            aws_sdk_resourcegroupstagging::config::Builder::from(&sdk)
                .interceptor(interceptor(&self.tagging))
                .build(),
        );
        aws.ecs = aws_sdk_ecs::Client::from_conf(
            aws_sdk_ecs::config::Builder::from(&sdk)
                .interceptor(interceptor(&self.ecs))
                .build(),
        );
        aws.s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .interceptor(interceptor(&self.s3))
                .build(),
        );
        let cfg = Config::parse(&format!("app = \"{APP}\"\n{}", self.cfg)).expect("a valid config");
        (Deployment::new(cfg, aws, Progress::hidden()), sleep)
    }
}

fn interceptor(rules: &[Rule]) -> MockResponseInterceptor {
    rules.iter().fold(
        MockResponseInterceptor::new().rule_mode(RuleMode::Sequential),
        |i, rule| i.with_rule(rule),
    )
}

/// lew's tags, as a service returns them.
pub fn lew_tags() -> Vec<(String, String)> {
    vec![
        (super::APP_TAG.to_string(), APP.to_string()),
        (
            super::VERSION_TAG.to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
    ]
}
