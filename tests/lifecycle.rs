//! setup, status and teardown against moto; every setting is read back with the SDK, not taken
//! from lew's own report.

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName as Attr;
use serde_json::{Value, json};

use crate::support::{ACCOUNT, App, Moto, REGION, actions};

fn decode_policy(doc: &str) -> Value {
    serde_json::from_str(&lew::resources::percent_decode(doc)).unwrap()
}

fn statements(policy: &Value) -> Vec<Value> {
    match &policy["Statement"] {
        Value::Array(a) => a.clone(),
        one => vec![one.clone()],
    }
}

/// Every `Resource` of a policy, flattened.
fn resources(policy: &Value) -> Vec<String> {
    statements(policy)
        .iter()
        .flat_map(|s| match &s["Resource"] {
            Value::Array(a) => a.iter().map(|r| r.as_str().unwrap().to_string()).collect(),
            Value::String(r) => vec![r.clone()],
            _ => vec![],
        })
        .collect()
}

async fn queue_attrs(app: &App, name: &str) -> HashMap<Attr, String> {
    let aws = app.aws().await;
    let url = aws
        .sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    aws.sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(Attr::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
}

#[tokio::test]
async fn setup_from_nothing_creates_every_resource_as_specified() {
    let app = App::new("");
    let report = app.lew().args(["--output", "json", "setup"]).ok().json();
    let acts = actions(&report);
    assert!(acts.iter().all(|(_, _, a)| a == "create"), "{acts:?}");
    for kind in [
        "iam role",
        "s3 bucket",
        "sqs queue",
        "sqs dead-letter queue",
        "ecs cluster",
        "ecr repository",
        "log group",
        "security group",
        "task definition",
        "lambda function",
        "lambda permission",
        "s3 notification",
        "eventbridge rule",
    ] {
        assert!(
            acts.iter().any(|(r, _, _)| r == kind),
            "{kind} missing: {acts:?}"
        );
    }

    let aws = app.aws().await;
    let p = app.prefix();
    let bucket = app.bucket();

    // Bucket: public access blocked, SSE-S3, TLS-only policy, tags, region.
    let pab = aws
        .s3
        .get_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .unwrap()
        .public_access_block_configuration
        .unwrap();
    assert_eq!(
        (
            pab.block_public_acls,
            pab.ignore_public_acls,
            pab.block_public_policy,
            pab.restrict_public_buckets
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let enc = aws
        .s3
        .get_bucket_encryption()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let rule = &enc.server_side_encryption_configuration.unwrap().rules[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .unwrap()
            .sse_algorithm()
            .as_str(),
        "AES256"
    );
    let policy: Value = serde_json::from_str(
        &aws.s3
            .get_bucket_policy()
            .bucket(&bucket)
            .send()
            .await
            .unwrap()
            .policy
            .unwrap(),
    )
    .unwrap();
    let tls = statements(&policy)
        .into_iter()
        .find(|s| s["Effect"] == "Deny")
        .expect("a deny statement");
    assert_eq!(tls["Condition"]["Bool"]["aws:SecureTransport"], "false");
    assert_eq!(tls["Action"], "s3:*");
    let location = aws
        .s3
        .get_bucket_location()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(location.location_constraint().unwrap().as_str(), REGION);
    let tags = aws
        .s3
        .get_bucket_tagging()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(
        tags.tag_set()
            .iter()
            .any(|t| t.key() == "lew:app" && t.value() == app.name)
    );

    // Queues: SSE, long polling, visibility, redrive to the DLQ after 3 receives.
    let jobs = queue_attrs(&app, &format!("{p}-jobs")).await;
    assert_eq!(jobs[&Attr::SqsManagedSseEnabled], "true");
    assert_eq!(jobs[&Attr::VisibilityTimeout], "900");
    assert_eq!(jobs[&Attr::ReceiveMessageWaitTimeSeconds], "20");
    let redrive: Value = serde_json::from_str(&jobs[&Attr::RedrivePolicy]).unwrap();
    assert_eq!(
        redrive["deadLetterTargetArn"],
        app.arn("sqs", &format!("{p}-jobs-dlq"))
    );
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "3"
    );
    let dlq = queue_attrs(&app, &format!("{p}-jobs-dlq")).await;
    assert_eq!(dlq[&Attr::SqsManagedSseEnabled], "true");
    assert_eq!(dlq[&Attr::MessageRetentionPeriod], "1209600");

    // Cluster with both Fargate capacity providers.
    let clusters = aws
        .ecs
        .describe_clusters()
        .clusters(&p)
        .send()
        .await
        .unwrap()
        .clusters
        .unwrap();
    let providers = clusters[0].capacity_providers();
    assert!(
        providers.contains(&"FARGATE".to_string())
            && providers.contains(&"FARGATE_SPOT".to_string())
    );

    // Task definition.
    let td = aws
        .ecs
        .describe_task_definition()
        .task_definition(format!("{p}-worker"))
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap();
    assert_eq!(td.network_mode().unwrap().as_str(), "awsvpc");
    assert_eq!(td.requires_compatibilities()[0].as_str(), "FARGATE");
    assert_eq!((td.cpu(), td.memory()), (Some("1024"), Some("2048")));
    assert_eq!(
        td.task_role_arn(),
        Some(format!("arn:aws:iam::{ACCOUNT}:role/{p}-task").as_str())
    );
    assert_eq!(
        td.execution_role_arn(),
        Some(format!("arn:aws:iam::{ACCOUNT}:role/{p}-execution").as_str())
    );
    let c = &td.container_definitions()[0];
    assert_eq!(c.name(), Some("worker"));
    assert_eq!(c.memory_reservation(), Some(2048));
    assert_eq!(c.readonly_root_filesystem(), Some(true));
    assert_eq!(c.stop_timeout(), Some(120));
    assert_eq!(
        c.image(),
        Some(format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{p}-worker:latest").as_str())
    );
    let log = c.log_configuration().unwrap();
    assert_eq!(log.log_driver().as_str(), "awslogs");
    let opts = log.options().unwrap();
    assert_eq!(opts["awslogs-group"], format!("/lew/{}/worker", app.name));
    assert_eq!(opts["awslogs-region"], REGION);
    let env: HashMap<&str, &str> = c
        .environment()
        .iter()
        .map(|kv| (kv.name().unwrap(), kv.value().unwrap()))
        .collect();
    assert!(
        env["LEW_QUEUE_URL"].ends_with(&format!("/{p}-jobs")),
        "{env:?}"
    );
    assert_eq!(env["LEW_OUTPUT_PREFIX"], "renders/");
    assert_eq!(env["LEW_WORK_DIR"], "/scratch");
    assert_eq!(c.mount_points()[0].container_path(), Some("/scratch"));

    // ECR: scan on push, lifecycle policy.
    let repo = aws
        .ecr
        .describe_repositories()
        .repository_names(format!("{p}-worker"))
        .send()
        .await
        .unwrap()
        .repositories
        .unwrap()
        .remove(0);
    assert!(repo.image_scanning_configuration().unwrap().scan_on_push());
    let lifecycle: Value = serde_json::from_str(
        &aws.ecr
            .get_lifecycle_policy()
            .repository_name(format!("{p}-worker"))
            .send()
            .await
            .unwrap()
            .lifecycle_policy_text
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        lifecycle["rules"][0]["selection"]["countType"],
        "imageCountMoreThan"
    );

    // Log groups with retention.
    for group in [
        format!("/lew/{}/worker", app.name),
        format!("/aws/lambda/{p}-launcher"),
    ] {
        let found = aws
            .logs
            .describe_log_groups()
            .log_group_name_prefix(&group)
            .send()
            .await
            .unwrap()
            .log_groups
            .unwrap();
        assert_eq!(found[0].retention_in_days(), Some(14), "{group}");
    }

    // Security group: outbound only.
    let sgs = crate::support::read::security_groups(&aws, &format!("{p}-worker")).await;
    assert_eq!(sgs.len(), 1);
    assert!(sgs[0].ip_permissions().is_empty());
    assert_eq!(sgs[0].ip_permissions_egress()[0].ip_protocol(), Some("-1"));

    // IAM: trust policies and inline policies scoped to exact ARNs.
    let queue_arn = app.arn("sqs", &format!("{p}-jobs"));
    for (role, service, must_have) in [
        (
            "launcher",
            "lambda.amazonaws.com",
            vec![
                queue_arn.clone(),
                format!("arn:aws:iam::{ACCOUNT}:role/{p}-task"),
            ],
        ),
        (
            "task",
            "ecs-tasks.amazonaws.com",
            vec![
                queue_arn.clone(),
                format!("arn:aws:s3:::{bucket}/scenes/*"),
                format!("arn:aws:s3:::{bucket}/renders/*"),
            ],
        ),
        (
            "execution",
            "ecs-tasks.amazonaws.com",
            vec![app.arn("ecr", &format!("repository/{p}-worker"))],
        ),
    ] {
        let name = format!("{p}-{role}");
        let r = aws
            .iam
            .get_role()
            .role_name(&name)
            .send()
            .await
            .unwrap()
            .role
            .unwrap();
        let trust = decode_policy(r.assume_role_policy_document().unwrap());
        assert_eq!(
            statements(&trust)[0]["Principal"]["Service"],
            service,
            "{name}"
        );
        assert!(
            r.tags()
                .iter()
                .any(|t| t.key() == "lew:app" && t.value() == app.name)
        );
        let doc = aws
            .iam
            .get_role_policy()
            .role_name(&name)
            .policy_name("lew")
            .send()
            .await
            .unwrap()
            .policy_document;
        let policy = decode_policy(&doc);
        let res = resources(&policy);
        for arn in &must_have {
            assert!(res.contains(arn), "{name} lacks {arn}: {res:?}");
        }
        // `*` only where AWS offers no scoping.
        for s in statements(&policy) {
            if s["Resource"] == "*" {
                let action = s["Action"].as_str().unwrap_or_default();
                assert!(
                    action == "ecr:GetAuthorizationToken"
                        || (action == "ecs:ListTasks"
                            && s["Condition"]["ArnEquals"]["ecs:cluster"].is_string()),
                    "{name}: unscoped {s}"
                );
            }
        }
    }
    let launcher_policy = decode_policy(
        &aws.iam
            .get_role_policy()
            .role_name(format!("{p}-launcher"))
            .policy_name("lew")
            .send()
            .await
            .unwrap()
            .policy_document,
    );
    let pass = statements(&launcher_policy)
        .into_iter()
        .find(|s| s["Action"] == "iam:PassRole")
        .unwrap();
    assert_eq!(
        pass["Condition"]["StringEquals"]["iam:PassedToService"],
        "ecs-tasks.amazonaws.com"
    );
    assert_eq!(pass["Resource"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_second_setup_changes_nothing_and_makes_no_mutating_call() {
    let moto = Moto::start();
    let app = App::on(&moto.url, "");
    app.lew().arg("setup").ok();

    moto.record();
    let report = app.lew().args(["--output", "json", "setup"]).ok().json();
    let calls = moto.recorded();
    let acts = actions(&report);
    assert!(acts.iter().all(|(_, _, a)| a == "unchanged"), "{acts:?}");
    let mutating: Vec<_> = calls.iter().filter(|(_, m)| *m).collect();
    assert!(
        mutating.is_empty(),
        "mutating calls on a no-op setup: {mutating:?}"
    );
    assert!(
        calls.len() > 20,
        "the no-op setup must still read everything: {calls:?}"
    );
}

#[tokio::test]
async fn dry_run_plans_everything_and_creates_nothing() {
    let moto = Moto::start();
    let app = App::on(&moto.url, "");
    moto.record();
    let run = app.lew().args(["setup", "--dry-run"]).ok();
    let calls = moto.recorded();
    assert!(run.stdout.contains("nothing was changed"), "{}", run.stdout);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("create ") && l.contains(" sqs queue ")),
        "{}",
        run.stdout
    );
    let mutating: Vec<_> = calls.iter().filter(|(_, m)| *m).collect();
    assert!(mutating.is_empty(), "--dry-run mutated: {mutating:?}");
    // An empty recording would pass the check above having seen nothing: the plan reads what
    // exists (here nothing yet), so the recorder saw it ask.
    assert!(
        calls.len() > 10,
        "the recorder saw the plan's reads: {calls:?}"
    );
    let aws = app.aws().await;
    assert!(
        aws.sqs
            .get_queue_url()
            .queue_name(format!("{}-jobs", app.prefix()))
            .send()
            .await
            .is_err()
    );
    assert!(
        aws.s3
            .head_bucket()
            .bucket(app.bucket())
            .send()
            .await
            .is_err()
    );

    // After a setup, the plan is empty; after a change to the config, it names the change.
    app.lew().arg("setup").ok();
    let run = app.lew().args(["setup", "--dry-run"]).ok();
    assert!(run.stdout.contains("nothing to do"), "{}", run.stdout);
    app.write_config("[queue]\nvisibility_timeout_s = 1200\n");
    moto.record();
    let plan = app
        .lew()
        .args(["--output", "json", "setup", "--dry-run"])
        .ok()
        .json();
    let calls = moto.recorded();
    assert!(calls.iter().all(|(_, m)| !m), "{calls:?}");
    assert!(
        calls.len() > 20,
        "the recorder saw the plan read everything: {calls:?}"
    );
    let q = plan["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "sqs queue")
        .unwrap();
    assert_eq!(q["action"], "update");
    assert!(
        q["changes"][0]
            .as_str()
            .unwrap()
            .contains("VisibilityTimeout: 900 → 1200"),
        "{q}"
    );
    assert_eq!(
        queue_attrs(&app, &format!("{}-jobs", app.prefix())).await[&Attr::VisibilityTimeout],
        "900"
    );
}

#[tokio::test]
async fn drift_is_reported_by_status_and_repaired_by_setup() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let aws = app.aws().await;
    let p = app.prefix();

    // Hand edits: a shorter visibility timeout, a broadened policy, encryption removed,
    // an inbound rule on the worker security group.
    let url = aws
        .sqs
        .get_queue_url()
        .queue_name(format!("{p}-jobs"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    aws.sqs
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(Attr::VisibilityTimeout, "30")
        .send()
        .await
        .unwrap();
    let broad = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]});
    aws.iam
        .put_role_policy()
        .role_name(format!("{p}-task"))
        .policy_name("lew")
        .policy_document(broad.to_string())
        .send()
        .await
        .unwrap();
    aws.s3
        .delete_bucket_encryption()
        .bucket(app.bucket())
        .send()
        .await
        .unwrap();

    let status = app
        .lew()
        .args(["--output", "json", "status"])
        .code(4)
        .json();
    let state = |resource: &str, name: &str| -> String {
        status["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == resource && r["name"].as_str().unwrap().contains(name))
            .unwrap_or_else(|| panic!("{resource} {name} not in {status}"))["state"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(state("sqs queue", "-jobs"), "drifted");
    assert_eq!(state("iam role", "-task"), "drifted");
    assert_eq!(state("s3 bucket", &app.bucket()), "drifted");
    assert_eq!(state("ecs cluster", &p), "present");

    let report = app.lew().args(["--output", "json", "setup"]).ok().json();
    let updated: Vec<_> = actions(&report)
        .into_iter()
        .filter(|(_, _, a)| a == "update")
        .map(|(r, n, _)| format!("{r} {n}"))
        .collect();
    assert_eq!(updated.len(), 3, "{updated:?}");
    assert_eq!(
        queue_attrs(&app, &format!("{p}-jobs")).await[&Attr::VisibilityTimeout],
        "900"
    );
    let doc = aws
        .iam
        .get_role_policy()
        .role_name(format!("{p}-task"))
        .policy_name("lew")
        .send()
        .await
        .unwrap()
        .policy_document;
    assert!(!resources(&decode_policy(&doc)).contains(&"*".to_string()));
    assert!(
        aws.s3
            .get_bucket_encryption()
            .bucket(app.bucket())
            .send()
            .await
            .is_ok()
    );
    let status = app.lew().args(["--output", "json", "status"]).ok().json();
    assert!(
        status["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "present"),
        "{status}"
    );
}

#[tokio::test]
async fn status_before_and_after_setup() {
    let app = App::new("");
    // Missing resources: exit 4 (documented), so CI can use status as a check.
    let before = app
        .lew()
        .args(["--output", "json", "status"])
        .code(4)
        .json();
    assert!(
        before["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "missing"),
        "{before}"
    );
    assert!(before["jobs"].is_null());
    app.lew().arg("setup").ok();
    let after = app.lew().args(["--output", "json", "status"]).ok().json();
    assert!(
        after["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "present"),
        "{after}"
    );
    assert_eq!(after["jobs"]["visible"], 0);
    assert_eq!(after["dead_letters"]["visible"], 0);
    assert_eq!(after["tasks"]["running"], 0);
    // moto's default VPC has no internet gateway: one warning names all its subnets.
    let no_route: Vec<_> = after["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| {
            w.as_str()
                .unwrap()
                .contains("no route to an internet gateway")
        })
        .collect();
    assert_eq!(no_route.len(), 1, "{after}");
    assert!(
        no_route[0].as_str().unwrap().starts_with("subnets subnet-"),
        "{after}"
    );
    let text = app.lew().arg("status").ok().stdout;
    assert!(
        text.contains("jobs queue:")
            && text
                .lines()
                .any(|l| l.starts_with("present ") && l.contains(" sqs queue ")),
        "{text}"
    );
    // One resource gone: 4 again, in text mode too.
    app.aws()
        .await
        .logs
        .delete_log_group()
        .log_group_name(format!("/lew/{}/worker", app.name))
        .send()
        .await
        .unwrap();
    let text = app.lew().arg("status").code(4).stdout;
    assert!(text.contains("MISSING"), "{text}");
}

#[tokio::test]
async fn teardown_removes_everything_but_the_bucket_then_delete_data_removes_it() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let aws = app.aws().await;
    aws.s3
        .put_object()
        .bucket(app.bucket())
        .key("renders/job1/a.png")
        .body(b"png".to_vec().into())
        .send()
        .await
        .unwrap();

    // Without a terminal and without --yes, teardown refuses and deletes nothing.
    let run = app.lew().arg("teardown").code(2);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    assert!(
        aws.sqs
            .get_queue_url()
            .queue_name(format!("{}-jobs", app.prefix()))
            .send()
            .await
            .is_ok()
    );

    let report = app
        .lew()
        .args(["--output", "json", "teardown", "--yes"])
        .ok()
        .json();
    assert_eq!(report["leftovers"], json!([]), "{report}");
    let p = app.prefix();
    assert!(
        aws.sqs
            .get_queue_url()
            .queue_name(format!("{p}-jobs"))
            .send()
            .await
            .is_err()
    );
    assert!(
        aws.sqs
            .get_queue_url()
            .queue_name(format!("{p}-jobs-dlq"))
            .send()
            .await
            .is_err()
    );
    for role in ["launcher", "task", "execution"] {
        assert!(
            aws.iam
                .get_role()
                .role_name(format!("{p}-{role}"))
                .send()
                .await
                .is_err(),
            "{role}"
        );
    }
    assert!(
        aws.lambda
            .get_function()
            .function_name(format!("{p}-launcher"))
            .send()
            .await
            .is_err()
    );
    assert!(
        aws.ecr
            .describe_repositories()
            .repository_names(format!("{p}-worker"))
            .send()
            .await
            .is_err()
    );
    let clusters = aws
        .ecs
        .describe_clusters()
        .clusters(&p)
        .send()
        .await
        .unwrap()
        .clusters
        .unwrap();
    assert!(clusters.iter().all(|c| c.status() != Some("ACTIVE")));
    let groups = aws
        .logs
        .describe_log_groups()
        .log_group_name_prefix(format!("/lew/{}/", app.name))
        .send()
        .await
        .unwrap()
        .log_groups
        .unwrap();
    assert!(groups.is_empty());
    let tds = aws
        .ecs
        .list_task_definitions()
        .family_prefix(format!("{p}-worker"))
        .send()
        .await
        .unwrap();
    assert!(tds.task_definition_arns().is_empty());
    // The bucket and its data stay, without lew's notification.
    let obj = aws
        .s3
        .head_object()
        .bucket(app.bucket())
        .key("renders/job1/a.png")
        .send()
        .await;
    assert!(obj.is_ok());
    let notif = aws
        .s3
        .get_bucket_notification_configuration()
        .bucket(app.bucket())
        .send()
        .await;
    if let Ok(n) = notif {
        assert!(n.lambda_function_configurations().is_empty());
    }

    // Again: everything is already gone, which is success.
    let again = app
        .lew()
        .args(["--output", "json", "teardown", "--yes"])
        .ok()
        .json();
    assert!(
        again["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["result"] == "already_gone" || r["result"] == "kept"),
        "{again}"
    );

    app.lew().args(["teardown", "--yes", "--delete-data"]).ok();
    assert!(
        aws.s3
            .head_bucket()
            .bucket(app.bucket())
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn resources_lew_did_not_create_are_neither_taken_over_nor_deleted() {
    let app = App::new("");
    let aws = app.aws().await;
    let name = format!("{}-jobs", app.prefix());
    aws.sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap();

    let run = app.lew().arg("setup").code(1);
    assert!(
        run.stdout.contains(&name) && run.stdout.contains("not tagged lew:app"),
        "{}",
        run.stdout
    );

    let report = app
        .lew()
        .args(["--output", "json", "teardown", "--yes", "--delete-data"])
        .ok()
        .json();
    let q = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name.as_str())
        .unwrap();
    assert_eq!(q["result"], "not_owned");
    assert!(
        aws.sqs
            .get_queue_url()
            .queue_name(&name)
            .send()
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_version_tag_from_an_older_lew_is_reported_and_refreshed() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let aws = app.aws().await;
    let role = format!("{}-task", app.prefix());
    aws.iam
        .tag_role()
        .role_name(&role)
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("lew:version")
                .value("0.0.1")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let plan = app
        .lew()
        .args(["--output", "json", "setup", "--dry-run"])
        .ok()
        .json();
    let line = plan["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == role.as_str())
        .cloned()
        .unwrap();
    assert_eq!(line["action"], "update", "{plan}");
    assert!(
        line["changes"].to_string().contains("lew:version"),
        "{line}"
    );

    app.lew().arg("setup").ok();
    let tags = aws
        .iam
        .list_role_tags()
        .role_name(&role)
        .send()
        .await
        .unwrap();
    let version = tags
        .tags()
        .iter()
        .find(|t| t.key() == "lew:version")
        .map(|t| t.value().to_string());
    assert_eq!(version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
}

/// The lifecycle rules of a bucket, as (id, prefix, days after which incomplete multipart
/// uploads are aborted, days after which objects expire).
async fn lifecycle_rules(app: &App) -> Vec<(String, String, Option<i32>, Option<i32>)> {
    let out = app
        .aws()
        .await
        .s3
        .get_bucket_lifecycle_configuration()
        .bucket(app.bucket())
        .send()
        .await
        .unwrap();
    let mut rules: Vec<_> = out
        .rules()
        .iter()
        .map(|r| {
            (
                r.id().unwrap_or_default().to_string(),
                r.filter()
                    .and_then(|f| f.prefix())
                    .unwrap_or_default()
                    .to_string(),
                r.abort_incomplete_multipart_upload()
                    .and_then(|a| a.days_after_initiation()),
                r.expiration().and_then(|e| e.days()),
            )
        })
        .collect();
    rules.sort();
    rules
}

#[tokio::test]
async fn incomplete_uploads_are_aborted_after_a_day_and_the_users_lifecycle_rules_kept() {
    use aws_sdk_s3::types::{
        BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
        LifecycleRuleFilter,
    };

    let app = App::new("[bucket]\ninput_prefix = \"in/\"\noutput_prefix = \"out/\"\n");
    app.lew().arg("setup").ok();
    let ours = |days: i32| {
        vec![
            (
                "lew-abort-incomplete-uploads-input".to_string(),
                "in/".to_string(),
                Some(days),
                None,
            ),
            (
                "lew-abort-incomplete-uploads-output".to_string(),
                "out/".to_string(),
                Some(days),
                None,
            ),
        ]
    };
    assert_eq!(lifecycle_rules(&app).await, ours(1));

    // A rule of the user's (renders expire after 30 days), and lew's input rule edited by hand:
    // PutBucketLifecycleConfiguration replaces the whole configuration.
    let rule = |id: &str, prefix: &str| {
        LifecycleRule::builder()
            .id(id)
            .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
            .status(ExpirationStatus::Enabled)
    };
    let theirs = rule("expire-old-renders", "out/")
        .expiration(LifecycleExpiration::builder().days(30).build())
        .build()
        .unwrap();
    let edited = rule("lew-abort-incomplete-uploads-input", "in/")
        .abort_incomplete_multipart_upload(
            aws_sdk_s3::types::AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(7)
                .build(),
        )
        .build()
        .unwrap();
    let aws = app.aws().await;
    aws.s3
        .put_bucket_lifecycle_configuration()
        .bucket(app.bucket())
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(theirs)
                .rules(edited)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let status = app
        .lew()
        .args(["--output", "json", "status"])
        .code(4)
        .json();
    let bucket = status["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "s3 bucket")
        .unwrap();
    assert_eq!(bucket["state"], "drifted", "{bucket}");
    let differences = bucket["differences"].to_string();
    assert!(
        differences.contains("lew-abort-incomplete-uploads-input")
            && differences.contains("lew-abort-incomplete-uploads-output"),
        "{differences}"
    );

    app.lew().arg("setup").ok();
    let mut want = ours(1);
    want.insert(
        0,
        (
            "expire-old-renders".to_string(),
            "out/".to_string(),
            None,
            Some(30),
        ),
    );
    assert_eq!(lifecycle_rules(&app).await, want);
    // Converged: nothing left to change.
    let plan = app
        .lew()
        .args(["--output", "json", "setup", "--dry-run"])
        .ok()
        .json();
    assert!(
        actions(&plan).iter().all(|(_, _, a)| a == "unchanged"),
        "{plan}"
    );
}
