//! What real AWS enforces and plain moto let pass (issue 11), against the stricter emulator
//! (scripts/moto_server.py): ListTasks' one-filter rule for `startedBy`, S3's checks of the
//! whole notification document, security groups and subnets of one VPC.

use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{AssignPublicIp, AwsVpcConfiguration, LaunchType, NetworkConfiguration};
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, LambdaFunctionConfiguration, NotificationConfiguration,
    NotificationConfigurationFilter, S3KeyFilter,
};
use lew::aws::Aws;

use crate::support::read::{default_subnets, lambda_notifications};
use crate::support::{App, foreign};

/// Starts `count` worker tasks the way the launcher does (startedBy lew-launcher).
async fn start_workers(app: &App, aws: &Aws, count: i32) -> Vec<String> {
    let subnets = default_subnets(aws).await;
    let group = aws
        .ec2
        .describe_security_groups()
        .group_names("default")
        .send()
        .await
        .unwrap()
        .security_groups()[0]
        .group_id()
        .unwrap()
        .to_string();
    aws.ecs
        .run_task()
        .cluster(app.prefix())
        .task_definition(format!("{}-worker", app.prefix()))
        .count(count)
        .started_by("lew-launcher")
        .launch_type(LaunchType::Fargate)
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(
                    AwsVpcConfiguration::builder()
                        .set_subnets(Some(subnets[..1].to_vec()))
                        .security_groups(group)
                        .assign_public_ip(AssignPublicIp::Enabled)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .tasks()
        .iter()
        .map(|t| t.task_arn().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn teardown_stops_the_worker_tasks_the_launcher_started() {
    // ListTasks refuses startedBy with desiredStatus: teardown could not find the workers.
    let app = App::new("");
    app.lew().arg("setup").ok();
    let aws = app.aws().await;
    let started = start_workers(&app, &aws, 2).await;

    let report = app
        .lew()
        .args(["--output", "json", "teardown", "--yes"])
        .ok()
        .json();

    assert_eq!(report["stopped_tasks"], 2, "{report}");
    let tasks = aws
        .ecs
        .describe_tasks()
        .cluster(app.prefix())
        .set_tasks(Some(started))
        .send()
        .await
        .unwrap();
    assert!(
        tasks
            .tasks()
            .iter()
            .all(|t| t.desired_status() == Some("STOPPED")),
        "{tasks:?}"
    );
}

#[tokio::test]
async fn render_names_a_worker_task_that_stopped_early() {
    // The stopped tasks are found by family and told apart by their startedBy.
    let app = App::new("");
    app.lew().arg("setup").ok();
    let aws = app.aws().await;
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/lew-demo");
    let render = app
        .lew()
        .args(["render", "--timeout", "12s", "--out"])
        .arg(app.path().join("out"))
        .arg(&demo);
    let render = std::thread::spawn(move || render.run());

    // Once the scene is uploaded (the render is waiting), a worker starts and is stopped the
    // way ECS stops one whose image cannot be pulled.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = aws
            .s3
            .list_objects_v2()
            .bucket(app.bucket())
            .prefix("scenes/")
            .send()
            .await
            .unwrap();
        if !listed.contents().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the scene was never uploaded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let [task] = start_workers(&app, &aws, 1).await.try_into().unwrap();
    aws.ecs
        .stop_task()
        .cluster(app.prefix())
        .task(&task)
        .reason("CannotPullContainerError: pull image manifest has been retried 5 time(s)")
        .send()
        .await
        .unwrap();

    let run = render.join().unwrap();
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "worker task {task} stopped: CannotPullContainerError"
        )),
        "{}",
        run.stderr
    );
}

fn filter(prefix: &str, suffix: Option<&str>) -> NotificationConfigurationFilter {
    let mut key = S3KeyFilter::builder().filter_rules(
        FilterRule::builder()
            .name(FilterRuleName::Prefix)
            .value(prefix)
            .build(),
    );
    if let Some(suffix) = suffix {
        key = key.filter_rules(
            FilterRule::builder()
                .name(FilterRuleName::Suffix)
                .value(suffix)
                .build(),
        );
    }
    NotificationConfigurationFilter::builder()
        .key(key.build())
        .build()
}

/// A bucket of the user's, with their own function notified of new objects under `prefix`.
async fn users_bucket_with_a_rule(app: &App, aws: &Aws, prefix: &str) -> (String, String) {
    let bucket = format!("{}-users", app.prefix());
    foreign::bucket(aws, &bucket).await;
    let function = format!("{}-users-fn", app.prefix());
    let arn = foreign::function_s3_may_invoke(aws, &function, &bucket).await;
    aws.s3
        .put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .lambda_function_configurations(
                    LambdaFunctionConfiguration::builder()
                        .id("users-own-rule")
                        .lambda_function_arn(&arn)
                        .events(Event::S3ObjectCreated)
                        .filter(filter(prefix, None))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    app.write_config(&format!("[bucket]\nname = \"{bucket}\"\n"));
    (bucket, function)
}

#[tokio::test]
async fn setup_refuses_a_bucket_rule_that_overlaps_lews_naming_it_and_the_fix() {
    let app = App::new("");
    let aws = app.aws().await;
    let (bucket, _) = users_bucket_with_a_rule(&app, &aws, "scenes/").await;

    let run = app.lew().args(["--output", "json", "setup"]).code(2);

    let report = run.json();
    let failure = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["error"].as_str().unwrap().contains("users-own-rule"))
        .unwrap_or_else(|| panic!("no failure names the user's rule: {report}"));
    let text = failure["error"].as_str().unwrap();
    assert!(
        text.contains(&bucket) && text.contains("bucket.input_prefix") && text.contains("overlap"),
        "{text}"
    );
    // Their rule is as it was, and lew's is not there.
    let rules = lambda_notifications(&aws, &bucket).await;
    assert_eq!(
        rules.keys().collect::<Vec<_>>(),
        ["users-own-rule"],
        "{rules:?}"
    );

    // Another input prefix is the fix.
    app.write_config(&format!(
        "[bucket]\nname = \"{bucket}\"\ninput_prefix = \"lew-scenes/\"\n"
    ));
    app.lew().arg("setup").ok();
    let rules = lambda_notifications(&aws, &bucket).await;
    assert_eq!(rules.len(), 2, "{rules:?}");
}

#[tokio::test]
async fn a_foreign_entry_whose_destination_is_gone_is_named() {
    let app = App::new("");
    let aws = app.aws().await;
    let (bucket, function) = users_bucket_with_a_rule(&app, &aws, "uploads/").await;
    aws.lambda
        .delete_function()
        .function_name(&function)
        .send()
        .await
        .unwrap();

    let run = app.lew().args(["--output", "json", "setup"]).code(2);

    let report = run.json();
    let text = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["error"].as_str().unwrap().to_string())
        .find(|e| e.contains("users-own-rule"))
        .unwrap_or_else(|| panic!("no failure names the user's rule: {report}"));
    assert!(
        text.contains(&function) && text.contains("repair or remove"),
        "{text}"
    );
    // Nothing of lew's was written into their configuration.
    let rules = lambda_notifications(&aws, &bucket).await;
    assert_eq!(
        rules.keys().collect::<Vec<_>>(),
        ["users-own-rule"],
        "{rules:?}"
    );
}

#[tokio::test]
async fn security_groups_of_another_vpc_than_the_subnets_are_refused_at_setup() {
    let app = App::new("");
    let aws = app.aws().await;
    let vpc = aws
        .ec2
        .create_vpc()
        .cidr_block("10.42.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc
        .unwrap()
        .vpc_id
        .unwrap();
    let group = aws
        .ec2
        .create_security_group()
        .group_name(format!("{}-elsewhere", app.prefix()))
        .description("a group in another VPC")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap()
        .group_id
        .unwrap();
    app.write_config(&format!("[network]\nsecurity_groups = [\"{group}\"]\n"));

    let run = app.lew().args(["--output", "json", "setup"]).code(2);

    let report = run.json();
    let text = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["error"].as_str().unwrap().to_string())
        .find(|e| e.contains(&group))
        .unwrap_or_else(|| panic!("no failure names {group}: {report}"));
    let default_vpc = aws
        .ec2
        .describe_vpcs()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("is-default")
                .values("true")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .vpcs()[0]
        .vpc_id()
        .unwrap()
        .to_string();
    assert!(text.contains(&vpc) && text.contains(&default_vpc), "{text}");
    // The launcher was never deployed with a network RunTask would refuse.
    assert!(
        !crate::support::read::function_exists(&aws, &format!("{}-launcher", app.prefix())).await
    );
}

/// A bucket of the user's that encrypts new objects with `kms_key` by default (SSE-KMS).
async fn users_bucket_encrypted_with(app: &App, aws: &Aws, kms_key: &str) -> String {
    use aws_sdk_s3::types::{
        ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
        ServerSideEncryptionRule,
    };
    let bucket = format!("{}-kms", app.prefix());
    foreign::bucket(aws, &bucket).await;
    let by_default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::AwsKms)
        .kms_master_key_id(kms_key)
        .build()
        .unwrap();
    aws.s3
        .put_bucket_encryption()
        .bucket(&bucket)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(by_default)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    app.write_config(&format!("[bucket]\nname = \"{bucket}\"\n"));
    bucket
}

/// The statements of the task role's inline policy, as IAM stores them.
async fn task_role_statements(app: &App, aws: &Aws) -> Vec<serde_json::Value> {
    let doc = aws
        .iam
        .get_role_policy()
        .role_name(format!("{}-task", app.prefix()))
        .policy_name("lew")
        .send()
        .await
        .unwrap()
        .policy_document;
    let doc: serde_json::Value =
        serde_json::from_str(&lew::resources::percent_decode(&doc)).unwrap();
    doc["Statement"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_worker_may_use_the_kms_key_a_bucket_encrypts_with_by_default() {
    let app = App::new("");
    let aws = app.aws().await;
    let key = app.arn("kms", "key/1234abcd-12ab-34cd-56ef-1234567890ab");
    users_bucket_encrypted_with(&app, &aws, &key).await;

    // The plan says so before anything is created.
    let plan = app.lew().args(["setup", "--dry-run"]).ok();
    assert!(
        plan.stdout.contains(&format!("may use KMS key {key}")),
        "{}",
        plan.stdout
    );
    app.lew().arg("setup").ok();

    let statements = task_role_statements(&app, &aws).await;
    let grant = statements
        .iter()
        .find(|s| s["Sid"] == "UseBucketKey")
        .unwrap_or_else(|| panic!("no grant of the bucket's key: {statements:?}"));
    assert_eq!(grant["Resource"], key.as_str());
    let mut actions: Vec<&str> = grant["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    actions.sort();
    assert_eq!(actions, ["kms:Decrypt", "kms:GenerateDataKey"]);
    // Nothing else changes on a second run.
    let again = app.lew().args(["--output", "json", "setup"]).ok().json();
    assert!(
        crate::support::actions(&again)
            .iter()
            .all(|(_, _, action)| action == "unchanged"),
        "{again}"
    );
}

#[tokio::test]
async fn a_bucket_encrypted_with_another_account_s_key_is_refused() {
    let app = App::new("");
    let aws = app.aws().await;
    let key = "arn:aws:kms:eu-west-1:210987654321:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let bucket = users_bucket_encrypted_with(&app, &aws, key).await;

    let report = app.lew().args(["--output", "json", "setup"]).code(2).json();

    let text = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["error"].as_str().unwrap().to_string())
        .find(|e| e.contains(key))
        .unwrap_or_else(|| panic!("no failure names the key: {report}"));
    assert!(
        text.contains("210987654321") && text.contains(&bucket),
        "{text}"
    );
}
