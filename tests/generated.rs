//! Snapshots of the documents lew generates, for a fixed account and region: the IAM
//! policies, the task definition, the launcher's configuration and the resource policies. A
//! reviewer sees every change to them as a diff of the whole document. No AWS call is made.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use insta::assert_json_snapshot;
use lew::aws::Aws;
use lew::config::Config;
use lew::progress::Progress;
use lew::resources::network::Network;
use lew::resources::{
    Deployment, bucket, events, function, registry, roles, task_definition, trigger,
};
use serde_json::json;

use crate::support::{ACCOUNT, REGION};

const QUEUE_URL: &str = "https://sqs.eu-west-1.amazonaws.com/123456789012/lew-povray-jobs";

/// The default app (`povray`) with `extra` lew.toml text, in a fixed account and region.
fn deployment(extra: &str) -> Deployment {
    let sdk = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .build();
    let aws = Aws::from_parts(sdk, REGION.into(), ACCOUNT.into(), "aws".into());
    let cfg = Config::parse(extra).expect("a valid config");
    Deployment::new(cfg, aws, Progress::hidden())
}

fn network() -> Network {
    Network {
        vpc_id: "vpc-0a1b2c3d".into(),
        subnets: vec!["subnet-0a1b2c3d".into(), "subnet-1a2b3c4d".into()],
        security_groups: vec!["sg-0a1b2c3d".into()],
    }
}

#[test]
fn iam_roles() {
    let d = deployment("");
    for spec in roles::specs(&d) {
        let role = spec.name.trim_start_matches("lew-povray-").to_string();
        assert_json_snapshot!(
            format!("role_{role}"),
            json!({
                "name": spec.name,
                "description": spec.description,
                "trust": spec.trust,
                "policy": spec.policy,
            })
        );
    }
}

#[test]
fn task_definition() {
    let d = deployment("");
    let image = task_definition::image_to_keep(&d, None, None);
    assert_json_snapshot!(task_definition::desired(&d, QUEUE_URL, &image));
}

#[test]
fn launcher_function() {
    let d = deployment("");
    assert_json_snapshot!(function::desired(&d, QUEUE_URL, &network()));
}

#[test]
fn launcher_environment_with_spot_and_private_subnets() {
    let d = deployment(
        "[worker]\nspot = true\nmax_tasks = 12\n[network]\nassign_public_ip = false\n\
         [bucket]\ninput_prefix = \"in/\"\noutput_prefix = \"out/\"\n",
    );
    assert_json_snapshot!(function::environment(&d, QUEUE_URL, &network()));
}

#[test]
fn resource_policies() {
    let d = deployment("");
    assert_json_snapshot!(json!({
        "lambda_permission": trigger::permission_statement(&d),
        "bucket_tls_statement": bucket::tls_statement(&d),
        "ecr_lifecycle": registry::lifecycle_policy(),
    }));
}

#[test]
fn event_rules() {
    let d = deployment("[launcher]\nreconcile_every_min = 10\n");
    let rules: Vec<_> = events::Which::ALL
        .into_iter()
        .map(|which| {
            let spec = events::spec(&d, which);
            json!({
                "name": spec.name,
                "arn": spec.arn,
                "event_pattern": spec.pattern,
                "schedule": spec.schedule,
                "enabled": spec.enabled,
                "target": {"id": events::TARGET_ID, "arn": d.function_arn()},
                "lambda_permission": events::permission_statement(&d, which),
            })
        })
        .collect();
    assert_json_snapshot!(rules);
}

#[test]
fn bucket_lifecycle_rules() {
    let d = deployment("");
    let rules: Vec<_> = bucket::lifecycle_rules(&d)
        .iter()
        .map(|r| {
            json!({
                "ID": r.id(),
                "Filter": {"Prefix": r.filter().and_then(|f| f.prefix())},
                "Status": r.status().as_str(),
                "AbortIncompleteMultipartUpload": {
                    "DaysAfterInitiation": r
                        .abort_incomplete_multipart_upload()
                        .and_then(|a| a.days_after_initiation()),
                },
            })
        })
        .collect();
    assert_json_snapshot!(rules);
}
