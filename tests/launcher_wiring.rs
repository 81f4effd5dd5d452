//! The launcher Lambda and the S3 trigger (issue 3) against moto: what `lew setup` and
//! `lew deploy-lambda` deploy, read back with the SDK; what a re-run and a changed config send;
//! and that status and teardown cover the function, its permission, the bucket notification
//! (only lew's entry) and the function's log group.

use std::collections::BTreeMap;
use std::io::Read as _;

use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, LambdaFunctionConfiguration, NotificationConfiguration,
    NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
};
use serde_json::Value;

use crate::support::read::{
    default_subnets, filter_rules, function, function_env, function_exists, function_policy,
    lambda_notifications, notifications, queue_url, security_groups_named,
};
use crate::support::{ACCOUNT, App, Moto, REGION, foreign};

/// The mutating calls in a recording, by name.
fn mutating(calls: &[(String, bool)]) -> Vec<&str> {
    calls
        .iter()
        .filter(|(_, m)| *m)
        .map(|(op, _)| op.as_str())
        .collect()
}

fn launcher(app: &App) -> String {
    format!("{}-launcher", app.prefix())
}

/// Someone else's function on the same bucket.
fn thumbnailer(app: &App) -> String {
    format!("{}-others-thumbnailer", app.prefix())
}

fn function_arn(app: &App) -> String {
    app.arn("lambda", &format!("function:{}", launcher(app)))
}

/// A resource's state in `lew status --output json`.
fn state(status: &Value, resource: &str) -> String {
    status["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == resource)
        .unwrap_or_else(|| panic!("{resource} not in {status}"))["state"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn setup_deploys_the_launcher_wired_to_queue_cluster_network_and_bucket() {
    let app = App::new("[worker]\nspot = true\n");
    app.lew().arg("setup").ok();
    let aws = app.aws().await;
    let p = app.prefix();
    let name = launcher(&app);

    let f = function(&aws, &name).await;
    assert_eq!(f.runtime().map(|r| r.as_str()), Some("python3.12"));
    assert_eq!(f.handler(), Some("launcher.handler"));
    assert_eq!(
        f.role(),
        Some(format!("arn:aws:iam::{ACCOUNT}:role/{p}-launcher").as_str())
    );
    assert_eq!((f.memory_size(), f.timeout()), (Some(128), Some(30)));

    // The environment is the whole contract with launcher.py: exactly these variables.
    let sg = security_groups_named(&aws, &format!("{p}-worker")).await;
    assert_eq!(sg.len(), 1, "{sg:?}");
    let expected: BTreeMap<String, String> = [
        ("LEW_QUEUE_URL", queue_url(&aws, &format!("{p}-jobs")).await),
        ("LEW_CLUSTER", p.clone()),
        ("LEW_TASK_FAMILY", format!("{p}-worker")),
        ("LEW_CONTAINER_NAME", "worker".into()),
        ("LEW_SUBNETS", default_subnets(&aws).await.join(",")),
        ("LEW_SECURITY_GROUPS", sg[0].clone()),
        ("LEW_ASSIGN_PUBLIC_IP", "ENABLED".into()),
        ("LEW_MAX_TASKS", "4".into()),
        ("LEW_CAPACITY_PROVIDER", "FARGATE_SPOT".into()),
        ("LEW_INPUT_PREFIX", "scenes/".into()),
        ("LEW_INPUT_SUFFIX", ".zip".into()),
        ("LEW_STARTED_BY", "lew-launcher".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(function_env(&aws, &name).await, expected);
    assert!(
        expected["LEW_SUBNETS"].split(',').count() > 1,
        "{expected:?}"
    );

    // The code moto holds is the zip lew builds from the embedded launcher, and that zip is
    // exactly launcher/launcher.py.
    let package = lew::embedded::launcher_zip();
    assert_eq!(
        f.code_sha256(),
        Some(lew::embedded::code_sha256(&package).as_str())
    );
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(package)).unwrap();
    assert_eq!(zip.len(), 1);
    let mut entry = zip.by_index(0).unwrap();
    assert_eq!(entry.name().unwrap(), "launcher.py");
    let mut source = String::new();
    entry.read_to_string(&mut source).unwrap();
    let on_disk =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/launcher/launcher.py"))
            .unwrap();
    assert_eq!(source, on_disk);

    // Invocation settings: Lambda's own retries, and one launcher at a time.
    let invoke = aws
        .lambda
        .get_function_event_invoke_config()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(invoke.maximum_retry_attempts(), Some(2));
    assert_eq!(invoke.maximum_event_age_in_seconds(), Some(21_600));
    // A launch that fails for good leaves its S3 event in the dead-letter queue.
    assert_eq!(
        invoke
            .destination_config()
            .and_then(|c| c.on_failure())
            .and_then(|f| f.destination()),
        Some(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{}-jobs-dlq", app.prefix()).as_str())
    );
    let reserved = aws
        .lambda
        .get_function_concurrency()
        .function_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(reserved.reserved_concurrent_executions(), Some(1));
    let tags = aws
        .lambda
        .list_tags()
        .resource(function_arn(&app))
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().and_then(|t| t.get("lew:app")), Some(&app.name));

    // S3, and only this bucket in this account, may invoke it.
    let statements = function_policy(&aws, &name).await;
    let s3: Vec<&Value> = statements
        .iter()
        .filter(|s| s["Principal"]["Service"] == "s3.amazonaws.com")
        .collect();
    assert_eq!(s3.len(), 1, "{statements:?}");
    let s = s3[0];
    assert_eq!(s["Effect"], "Allow");
    assert_eq!(s["Action"], "lambda:InvokeFunction");
    assert_eq!(s["Resource"], function_arn(&app));
    assert_eq!(
        s["Condition"]["ArnLike"]["AWS:SourceArn"],
        format!("arn:aws:s3:::{}", app.bucket())
    );
    assert_eq!(s["Condition"]["StringEquals"]["AWS:SourceAccount"], ACCOUNT);

    // The bucket notifies the function of new zips under the input prefix.
    let entries = lambda_notifications(&aws, &app.bucket()).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let ours = &entries[&format!("{p}-launcher")];
    assert_eq!(ours.lambda_function_arn(), function_arn(&app));
    assert_eq!(ours.events(), [Event::S3ObjectCreated]);
    assert_eq!(
        filter_rules(ours),
        [
            ("prefix".to_string(), "scenes/".to_string()),
            ("suffix".to_string(), ".zip".to_string())
        ]
    );
}

#[tokio::test]
async fn deploy_lambda_again_uploads_nothing_and_changes_nothing() {
    let moto = Moto::start();
    let app = App::on(&moto.url, "");
    app.lew().arg("setup").ok();

    moto.record();
    let report = app
        .lew()
        .args(["--output", "json", "deploy-lambda"])
        .ok()
        .json();
    let calls = moto.recorded();

    assert_eq!(report["function"]["action"], "unchanged", "{report}");
    assert_eq!(
        report["code_sha256"],
        lew::embedded::code_sha256(&lew::embedded::launcher_zip())
    );
    assert!(mutating(&calls).is_empty(), "{calls:?}");
    let read_function = format!("GET /2015-03-31/functions/{}", launcher(&app));
    assert!(
        calls.iter().any(|(op, _)| op.starts_with(&read_function)),
        "deploy-lambda must read the function: {calls:?}"
    );
}

#[tokio::test]
async fn deploy_lambda_recreates_a_deleted_function_with_its_s3_permission() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let aws = app.aws().await;
    let name = launcher(&app);
    // Deleting a function deletes its resource policy with it.
    aws.lambda
        .delete_function()
        .function_name(&name)
        .send()
        .await
        .unwrap();

    let report = app
        .lew()
        .args(["--output", "json", "deploy-lambda"])
        .ok()
        .json();
    assert_eq!(report["function"]["action"], "create", "{report}");
    assert_eq!(report["permission"]["action"], "create", "{report}");
    let policy = aws
        .lambda
        .get_policy()
        .function_name(&name)
        .send()
        .await
        .expect("the recreated function has a resource policy");
    let policy: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "{policy}");
    assert_eq!(statements[0]["Principal"]["Service"], "s3.amazonaws.com");

    // And a second run finds both in place.
    let again = app
        .lew()
        .args(["--output", "json", "deploy-lambda"])
        .ok()
        .json();
    assert_eq!(again["permission"]["action"], "unchanged", "{again}");
}

#[tokio::test]
async fn a_changed_config_updates_only_the_function_configuration() {
    let moto = Moto::start();
    let app = App::on(&moto.url, "");
    app.lew().arg("setup").ok();
    let aws = app.aws().await;
    let name = launcher(&app);
    let configuration = format!("PUT /2015-03-31/functions/{name}/configuration");

    app.write_config("[worker]\nmax_tasks = 7\n[launcher]\nmemory_mb = 256\n");
    moto.record();
    let report = app
        .lew()
        .args(["--output", "json", "deploy-lambda"])
        .ok()
        .json();
    let calls = moto.recorded();

    assert_eq!(report["function"]["action"], "update", "{report}");
    let changes = report["function"]["changes"].to_string();
    assert!(
        changes.contains("memory_mb: 128 → 256") && changes.contains("LEW_MAX_TASKS: 4 → 7"),
        "{changes}"
    );
    assert!(!changes.contains("code"), "{changes}");
    assert_eq!(mutating(&calls), [configuration.as_str()], "{calls:?}");
    assert_eq!(function(&aws, &name).await.memory_size(), Some(256));
    assert_eq!(function_env(&aws, &name).await["LEW_MAX_TASKS"], "7");

    // The same through setup: the function's configuration is the only thing that changes.
    app.write_config("[worker]\nmax_tasks = 7\n[launcher]\nmemory_mb = 256\ntimeout_s = 60\n");
    moto.record();
    let report = app.lew().args(["--output", "json", "setup"]).ok().json();
    let calls = moto.recorded();
    assert_eq!(mutating(&calls), [configuration.as_str()], "{calls:?}");
    let updated: Vec<&Value> = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] != "unchanged")
        .collect();
    assert_eq!(updated.len(), 1, "{report}");
    assert_eq!(updated[0]["resource"], "lambda function");
    assert_eq!(function(&aws, &name).await.timeout(), Some(60));
}

/// Someone else's entries on the bucket: a queue notified of uploads under `incoming/`, and
/// another function of thumbnails under `thumbs/` (real destinations that let S3 send to them:
/// S3 tests every destination whenever the configuration is written).
async fn put_foreign_notifications(app: &App, keep: Vec<LambdaFunctionConfiguration>) {
    let aws = app.aws().await;
    let queue = format!("{}-others", app.prefix());
    foreign::queue_s3_may_send_to(&aws, &queue, &app.bucket()).await;
    foreign::function_s3_may_invoke(&aws, &thumbnailer(app), &app.bucket()).await;
    let prefix = |p: &str| {
        NotificationConfigurationFilter::builder()
            .key(
                S3KeyFilter::builder()
                    .filter_rules(
                        FilterRule::builder()
                            .name(FilterRuleName::Prefix)
                            .value(p)
                            .build(),
                    )
                    .build(),
            )
            .build()
    };
    let thumbnailer = LambdaFunctionConfiguration::builder()
        .id("others-thumbnailer")
        .lambda_function_arn(app.arn("lambda", &format!("function:{}", thumbnailer(app))))
        .events(Event::S3ObjectCreated)
        .filter(prefix("thumbs/"))
        .build()
        .unwrap();
    let config = NotificationConfiguration::builder()
        .queue_configurations(
            QueueConfiguration::builder()
                .id("others-queue")
                .queue_arn(app.arn("sqs", &queue))
                .events(Event::S3ObjectCreated)
                .filter(prefix("incoming/"))
                .build()
                .unwrap(),
        )
        .set_lambda_function_configurations(Some(keep.into_iter().chain([thumbnailer]).collect()))
        .build();
    aws.s3
        .put_bucket_notification_configuration()
        .bucket(app.bucket())
        .notification_configuration(config)
        .send()
        .await
        .unwrap();
}

/// The foreign entries are there, unchanged.
async fn assert_foreign_notifications_kept(app: &App) {
    let aws = app.aws().await;
    let n = notifications(&aws, &app.bucket()).await;
    let queues = n.queue_configurations();
    assert_eq!(queues.len(), 1, "{n:?}");
    assert_eq!(queues[0].id(), Some("others-queue"));
    assert_eq!(
        queues[0].queue_arn(),
        app.arn("sqs", &format!("{}-others", app.prefix()))
    );
    let lambdas = lambda_notifications(&aws, &app.bucket()).await;
    let theirs = &lambdas["others-thumbnailer"];
    assert_eq!(
        theirs.lambda_function_arn(),
        app.arn("lambda", &format!("function:{}", thumbnailer(app)))
    );
    assert_eq!(
        filter_rules(theirs),
        [("prefix".to_string(), "thumbs/".to_string())]
    );
}

#[tokio::test]
async fn other_notification_entries_survive_setup_and_teardown() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let aws = app.aws().await;
    let id = format!("{}-launcher", app.prefix());
    let ours = lambda_notifications(&aws, &app.bucket()).await[&id].clone();
    put_foreign_notifications(&app, vec![ours]).await;

    // A setup that rewrites lew's entry (a new input prefix) keeps the others.
    app.write_config("[bucket]\ninput_prefix = \"uploads/\"\n");
    let report = app.lew().args(["--output", "json", "setup"]).ok().json();
    let notification = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "s3 notification")
        .unwrap()
        .clone();
    assert_eq!(notification["action"], "update", "{report}");
    assert_foreign_notifications_kept(&app).await;
    let lambdas = lambda_notifications(&aws, &app.bucket()).await;
    assert_eq!(lambdas.len(), 2, "{lambdas:?}");
    assert_eq!(
        filter_rules(&lambdas[&id]),
        [
            ("prefix".to_string(), "uploads/".to_string()),
            ("suffix".to_string(), ".zip".to_string())
        ]
    );

    // Teardown removes lew's entry only.
    let report = app
        .lew()
        .args(["--output", "json", "teardown", "--yes"])
        .ok()
        .json();
    let removed = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "s3 notification")
        .unwrap()
        .clone();
    assert_eq!(removed["result"], "deleted", "{report}");
    assert_foreign_notifications_kept(&app).await;
    let lambdas = lambda_notifications(&aws, &app.bucket()).await;
    assert!(!lambdas.contains_key(&id), "{lambdas:?}");
    assert_eq!(lambdas.len(), 1, "{lambdas:?}");
}

#[tokio::test]
async fn status_and_teardown_cover_function_permission_notification_and_log_group() {
    let app = App::new("");
    let trigger = ["lambda function", "lambda permission", "s3 notification"];
    let before = app.lew().args(["--output", "json", "status"]).ok().json();
    for resource in trigger {
        assert_eq!(state(&before, resource), "missing", "{before}");
    }

    app.lew().arg("setup").ok();
    let status = app.lew().args(["--output", "json", "status"]).ok().json();
    for resource in trigger {
        assert_eq!(state(&status, resource), "present", "{status}");
    }

    // Drift in the trigger is seen: lew's notification entry removed by hand.
    let aws = app.aws().await;
    aws.s3
        .put_bucket_notification_configuration()
        .bucket(app.bucket())
        .notification_configuration(NotificationConfiguration::builder().build())
        .send()
        .await
        .unwrap();
    let status = app.lew().args(["--output", "json", "status"]).ok().json();
    assert_eq!(state(&status, "s3 notification"), "missing", "{status}");
    app.lew().arg("setup").ok();

    // The launcher's log group as Lambda itself would make it: untagged. Still lew's to delete.
    let group = format!("/aws/lambda/{}", launcher(&app));
    aws.logs
        .delete_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    aws.logs
        .create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();

    let report = app
        .lew()
        .args(["--output", "json", "teardown", "--yes"])
        .ok()
        .json();
    let result = |resource: &str, name: &str| -> String {
        report["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == resource && r["name"].as_str().unwrap().contains(name))
            .unwrap_or_else(|| panic!("{resource} {name} not in {report}"))["result"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(result("lambda function", &launcher(&app)), "deleted");
    assert_eq!(result("lambda permission", "LewS3Invoke"), "deleted");
    assert_eq!(result("s3 notification", &launcher(&app)), "deleted");
    assert_eq!(result("log group", &group), "deleted");
    assert_eq!(report["leftovers"], serde_json::json!([]), "{report}");

    assert!(!function_exists(&aws, &launcher(&app)).await);
    assert!(function_policy(&aws, &launcher(&app)).await.is_empty());
    assert!(lambda_notifications(&aws, &app.bucket()).await.is_empty());
    let groups = aws
        .logs
        .describe_log_groups()
        .log_group_name_prefix(&group)
        .send()
        .await
        .unwrap();
    assert!(groups.log_groups().is_empty(), "{groups:?}");

    let after = app.lew().args(["--output", "json", "status"]).ok().json();
    for resource in trigger {
        assert_eq!(state(&after, resource), "missing", "{after}");
    }
}
