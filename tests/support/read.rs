//! Reading back what lew deployed, with the SDK, for the assertions of several test modules.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use aws_sdk_lambda::types::FunctionConfiguration;
use aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput;
use aws_sdk_s3::types::LambdaFunctionConfiguration;
use lew::aws::Aws;
use serde_json::Value;

pub async fn function(aws: &Aws, name: &str) -> FunctionConfiguration {
    aws.lambda
        .get_function()
        .function_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetFunction {name}: {e:?}"))
        .configuration
        .expect("a configuration")
}

pub async fn function_env(aws: &Aws, name: &str) -> BTreeMap<String, String> {
    function(aws, name)
        .await
        .environment()
        .and_then(|e| e.variables())
        .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

pub async fn function_exists(aws: &Aws, name: &str) -> bool {
    aws.lambda
        .get_function()
        .function_name(name)
        .send()
        .await
        .is_ok()
}

/// The statements of a function's resource policy (none when it has no policy).
pub async fn function_policy(aws: &Aws, name: &str) -> Vec<Value> {
    let Ok(out) = aws.lambda.get_policy().function_name(name).send().await else {
        return Vec::new();
    };
    let policy: Value = serde_json::from_str(out.policy().unwrap_or("{}")).unwrap();
    match &policy["Statement"] {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    }
}

pub async fn queue_url(aws: &Aws, name: &str) -> String {
    aws.sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetQueueUrl {name}: {e:?}"))
        .queue_url
        .unwrap()
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The default VPC's default subnets, sorted.
pub async fn default_subnets(aws: &Aws) -> Vec<String> {
    let vpc = aws
        .ec2
        .describe_vpcs()
        .filters(filter("is-default", "true"))
        .send()
        .await
        .unwrap()
        .vpcs()[0]
        .vpc_id()
        .unwrap()
        .to_string();
    let mut ids: Vec<String> = aws
        .ec2
        .describe_subnets()
        .filters(filter("vpc-id", &vpc))
        .filters(filter("default-for-az", "true"))
        .send()
        .await
        .unwrap()
        .subnets()
        .iter()
        .map(|s| s.subnet_id().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// The security groups with this name, as EC2 describes them.
pub async fn security_groups(aws: &Aws, name: &str) -> Vec<aws_sdk_ec2::types::SecurityGroup> {
    aws.ec2
        .describe_security_groups()
        .filters(filter("group-name", name))
        .send()
        .await
        .unwrap()
        .security_groups
        .unwrap_or_default()
}

/// The ids of the security groups with this name.
pub async fn security_groups_named(aws: &Aws, name: &str) -> Vec<String> {
    security_groups(aws, name)
        .await
        .iter()
        .map(|g| g.group_id().unwrap().to_string())
        .collect()
}

/// The bucket's notification configuration. moto answers an empty one with a document the
/// SDK cannot parse (see `lew::resources::trigger`); that counts as empty.
pub async fn notifications(aws: &Aws, bucket: &str) -> GetBucketNotificationConfigurationOutput {
    aws.s3
        .head_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("bucket {bucket}: {e:?}"));
    aws.s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|_| GetBucketNotificationConfigurationOutput::builder().build())
}

/// The Lambda entries of the bucket's notifications by Id.
pub async fn lambda_notifications(
    aws: &Aws,
    bucket: &str,
) -> BTreeMap<String, LambdaFunctionConfiguration> {
    notifications(aws, bucket)
        .await
        .lambda_function_configurations()
        .iter()
        .map(|c| (c.id().unwrap_or_default().to_string(), c.clone()))
        .collect()
}

/// A notification entry's key filter as (lower-cased rule name, value), sorted.
pub fn filter_rules(c: &LambdaFunctionConfiguration) -> Vec<(String, String)> {
    let mut rules: Vec<(String, String)> = c
        .filter()
        .and_then(|f| f.key())
        .map(|k| {
            k.filter_rules()
                .iter()
                .map(|r| {
                    (
                        r.name().unwrap().as_str().to_ascii_lowercase(),
                        r.value().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    rules.sort();
    rules
}
