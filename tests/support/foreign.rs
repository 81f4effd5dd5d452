//! Someone else's resources, put next to lew's by tests: destinations S3 accepts in a bucket's
//! event notifications (S3 tests every destination when the configuration is written, as the
//! emulator does: the function must let s3.amazonaws.com invoke it for that bucket, the queue
//! must let it send).

use lew::aws::Aws;
use serde_json::json;

use super::{ACCOUNT, REGION};

/// Creates a bucket of the user's, `name`, in the tests' region.
pub async fn bucket(aws: &Aws, name: &str) {
    aws.s3
        .create_bucket()
        .bucket(name)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(REGION))
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// Creates a Lambda function `name` (and its role) that S3 may invoke for `bucket`; returns
/// its ARN.
pub async fn function_s3_may_invoke(aws: &Aws, name: &str, bucket: &str) -> String {
    let trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }]});
    let role = aws
        .iam
        .create_role()
        .role_name(format!("{name}-role"))
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    aws.lambda
        .create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .handler("launcher.handler")
        .role(role.arn())
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(lew::embedded::launcher_zip().into())
                .build(),
        )
        .send()
        .await
        .unwrap();
    allow_s3(aws, name, bucket).await;
    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
}

/// Lets S3 invoke function `name` for `bucket` (this account).
pub async fn allow_s3(aws: &Aws, name: &str, bucket: &str) {
    aws.lambda
        .add_permission()
        .function_name(name)
        .statement_id(format!("s3-{bucket}"))
        .action("lambda:InvokeFunction")
        .principal("s3.amazonaws.com")
        .source_arn(format!("arn:aws:s3:::{bucket}"))
        .source_account(ACCOUNT)
        .send()
        .await
        .unwrap();
}

/// Creates a queue `name` whose policy lets S3 send `bucket`'s notifications; returns its ARN.
pub async fn queue_s3_may_send_to(aws: &Aws, name: &str, bucket: &str) -> String {
    let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}");
    let policy = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": arn,
        "Condition": {"ArnLike": {"aws:SourceArn": format!("arn:aws:s3:::{bucket}")}},
    }]});
    aws.sqs
        .create_queue()
        .queue_name(name)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::Policy,
            policy.to_string(),
        )
        .send()
        .await
        .unwrap();
    arn
}
