//! The CI deploy step of docs/ci.md: its `lew` steps run exactly as the workflow writes them,
//! without a terminal and with `CI=true`, with the outputs and exit codes the page documents;
//! and the IAM policy `lew iam-policy` prints for the deploy role grants every call those
//! commands make.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{App, Run};

/// The push-image tests' container environment (a docker CLI, and a registry behind the
/// emulator's ECR: see tests/image.rs), or `None` (skip) outside CI when scripts/test did not
/// set it up.
fn registry() -> Option<String> {
    match std::env::var("LEW_TEST_REGISTRY") {
        Ok(registry) => Some(registry),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!(
                "CI must run the deploy-step tests: scripts/test did not export LEW_TEST_REGISTRY"
            )
        }
        Err(_) => {
            eprintln!("SKIPPED: no container environment (LEW_TEST_SKIP_CONTAINER=1?)");
            None
        }
    }
}

/// The `run:` lines of the workflow in docs/ci.md that call lew, in order.
fn documented_steps() -> Vec<String> {
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ci.md")).unwrap();
    let workflow = page
        .split("```yaml")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/ci.md has a ```yaml workflow");
    workflow
        .lines()
        .filter_map(|l| l.trim().strip_prefix("run: "))
        .filter(|run| run.starts_with("lew "))
        .map(str::to_string)
        .collect()
}

/// Runs one step as the runner does: `sh -c`, lew on the PATH, no terminal, `CI=true`.
fn step(app: &App, docker_config: &Path, line: &str) -> Run {
    let lew = Path::new(env!("CARGO_BIN_EXE_lew"));
    let path = format!(
        "{}:{}",
        lew.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .args(["-c", line])
        .current_dir(app.path())
        .env("PATH", path)
        .env("CI", "true")
        .env("AWS_ENDPOINT_URL", &app.endpoint)
        .env("DOCKER_CONFIG", docker_config)
        .env_remove("LEW_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The file a step's stdout went to, as exactly one JSON document.
fn one_document(app: &App, file: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(app.path().join(file)).unwrap();
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{file} is not exactly one JSON document ({e}):\n{text}"))
}

#[test]
fn the_documented_deploy_step_runs_as_documented() {
    if registry().is_none() {
        return;
    }
    let steps = documented_steps();
    assert_eq!(
        steps,
        [
            "lew setup --output json > setup.json",
            "lew push-image --output json > push-image.json",
            "lew status",
        ],
        "the workflow in docs/ci.md changed: update this test's checks with it"
    );
    let app = App::new("");
    let docker_config = tempfile::tempdir().unwrap();
    let run = |line: &str| step(&app, docker_config.path(), line);

    for line in &steps {
        let r = run(line);
        assert_eq!(r.code, 0, "`{line}`: {r:?}");
        // No terminal, CI=true: no colour, no spinner, no question; every progress line
        // starts with its time.
        assert!(!r.stderr.contains('\u{1b}'), "`{line}`: {}", r.stderr);
        for l in r.stderr.lines() {
            assert!(
                l.len() > 9 && l.as_bytes()[8] == b'Z' && l.as_bytes()[2] == b':',
                "`{line}`: a progress line without its time: {l:?}"
            );
        }
    }
    let setup = one_document(&app, "setup.json");
    assert_eq!(setup["app"], app.name.as_str(), "{setup}");
    assert!(setup["resources"].as_array().unwrap().len() > 10, "{setup}");
    assert!(setup.get("failures").is_none(), "{setup}");
    let push = one_document(&app, "push-image.json");
    assert!(
        push["image"].as_str().unwrap().contains("@sha256:"),
        "pinned by digest: {push}"
    );

    // The gate: a resource gone makes `lew status` exit 4, failing the job.
    let gate = steps.last().unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        app.aws()
            .await
            .logs
            .delete_log_group()
            .log_group_name(format!("/lew/{}/worker", app.name))
            .send()
            .await
            .unwrap();
    });
    let r = run(gate);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stdout.contains("MISSING"), "{}", r.stdout);
    // And the setup step repairs it (exit 0, one document).
    assert_eq!(run(&steps[0]).code, 0);
    assert_eq!(run(gate).code, 0);

    // A configuration error: exit 2, and stdout is still one document, the error's.
    std::fs::write(app.config_path(), "[worker]\ncpu = 1000\n").unwrap();
    let r = run(&steps[0]);
    assert_eq!(r.code, 2, "{r:?}");
    let error = one_document(&app, "setup.json");
    assert_eq!(error["exit_code"], 2, "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("worker.cpu"),
        "{error}"
    );
}

/// The calls a `lew -vv` run printed, as (service, operation).
fn calls_made(run: &Run) -> BTreeSet<(String, String)> {
    run.stderr
        .lines()
        .filter_map(|l| l.split_once(lew::aws::CALL_PREFIX))
        .map(|(_, call)| {
            let (service, operation) = call.trim().rsplit_once(' ').unwrap();
            (service.to_string(), operation.to_string())
        })
        .collect()
}

/// Whether a statement of the policy allows `action`.
fn granted(policy: &serde_json::Value, action: &str) -> bool {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["Action"].as_array().unwrap().iter().any(|a| a == action))
}

/// The IAM action of an API operation is `<prefix>:<Operation>` but for these, from the Service
/// Authorization Reference ("Actions, resources, and condition keys for Amazon S3": "the
/// action s3:GetEncryptionConfiguration ... GetBucketEncryption", and so on), and
/// GetCallerIdentity, which needs no permission.
const ACTION_NAMED_OTHERWISE: &[(&str, &str, Option<&str>)] = &[
    (
        "S3",
        "GetBucketEncryption",
        Some("s3:GetEncryptionConfiguration"),
    ),
    (
        "S3",
        "PutBucketEncryption",
        Some("s3:PutEncryptionConfiguration"),
    ),
    (
        "S3",
        "GetPublicAccessBlock",
        Some("s3:GetBucketPublicAccessBlock"),
    ),
    (
        "S3",
        "PutPublicAccessBlock",
        Some("s3:PutBucketPublicAccessBlock"),
    ),
    (
        "S3",
        "GetBucketNotificationConfiguration",
        Some("s3:GetBucketNotification"),
    ),
    (
        "S3",
        "PutBucketNotificationConfiguration",
        Some("s3:PutBucketNotification"),
    ),
    ("S3", "ListObjectsV2", Some("s3:ListBucket")),
    (
        "S3",
        "GetBucketLifecycleConfiguration",
        Some("s3:GetLifecycleConfiguration"),
    ),
    (
        "S3",
        "PutBucketLifecycleConfiguration",
        Some("s3:PutLifecycleConfiguration"),
    ),
    ("STS", "GetCallerIdentity", None),
];

/// The action a call's operation itself needs (besides tagging on create, passing a role).
fn own_action(service: &str, operation: &str) -> Option<String> {
    if let Some((_, _, action)) = ACTION_NAMED_OTHERWISE
        .iter()
        .find(|(s, o, _)| *s == service && *o == operation)
    {
        return action.map(str::to_string);
    }
    let prefix = match service {
        "CloudWatch Logs" => "logs".to_string(),
        "EventBridge" => "events".to_string(),
        other => other.to_lowercase(),
    };
    Some(format!("{prefix}:{operation}"))
}

/// Deploy calls the emulator cannot be made to need, each with why it is in the list.
const NOT_EXERCISED: &[(&str, &str, &str)] = &[
    (
        "IAM",
        "CreateServiceLinkedRole",
        "only when a new account's first CreateCluster is refused for want of ECS's role",
    ),
    (
        "EC2",
        "DescribeVpcs",
        "only to explain a region without default subnets",
    ),
    (
        "Lambda",
        "ListTags",
        "only when GetFunction returns no tags: to a caller without lambda:ListTags (this policy \
         grants it) or for a function lew did not tag (which setup then refuses to change)",
    ),
];

/// `snake_case` of an SDK operation name, as lew's source calls it (`ListObjectsV2` →
/// `list_objects_v2`).
fn snake(operation: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = operation.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let boundary = i > 0
            && c.is_ascii_uppercase()
            && (chars[i - 1].is_ascii_lowercase()
                || chars.get(i + 1).is_some_and(char::is_ascii_lowercase));
        if boundary {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Every Rust source file of lew, as one text with whitespace squeezed (calls span lines).
fn source() -> String {
    fn walk(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut text = String::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut text,
    );
    text.split_whitespace().collect()
}

/// Every call `setup`, `deploy-lambda`, `push-image` and `status` make (cold, again, and
/// repairing drift of every kind setup repairs) is in lew's list and granted by the policy
/// `lew iam-policy` prints; every entry of the list is called in lew's source; and every entry
/// was made here, but for the few the emulator cannot make lew need.
#[tokio::test]
async fn the_deploy_policy_grants_every_call_of_the_deploy_commands() {
    use lew::commands::iam_policy::{CALLS, find};

    let app = App::new("");
    let mut made = BTreeSet::new();
    let mut vv = |args: &[&str]| {
        let run = app.lew().arg("-vv").args(args).run();
        assert!([0, 4].contains(&run.code), "lew {args:?}: {run:?}");
        made.extend(calls_made(&run));
        run
    };
    vv(&["status"]);
    vv(&["setup"]);
    vv(&["setup"]);
    vv(&["deploy-lambda"]);
    drift(&app).await;
    vv(&["status"]);
    let repaired = vv(&["--output", "json", "setup"]);
    let report: serde_json::Value = serde_json::from_str(&repaired.stdout).unwrap();
    assert!(report.get("failures").is_none(), "{report}");
    vv(&["status"]);
    // With the container environment the push goes through (the emulator's ECR leads to a
    // real registry); without it the build fails (exit 1) after lew asked ECR whether it has
    // the worker already. Only the calls count.
    let registry = registry();
    let docker_config = tempfile::tempdir().unwrap();
    let run = app
        .lew()
        .env("DOCKER_CONFIG", docker_config.path())
        .args(["-vv", "push-image"])
        .run();
    assert_eq!(run.code, if registry.is_some() { 0 } else { 1 }, "{run:?}");
    made.extend(calls_made(&run));
    assert!(made.len() > 30, "-vv printed too few calls: {made:?}");

    let policy = app
        .lew()
        .args(["--output", "json", "iam-policy"])
        .ok()
        .json();
    for (service, operation) in &made {
        let call = find(service, operation)
            .unwrap_or_else(|| panic!("{service} {operation} is not in iam_policy::CALLS"));
        for (action, _) in call.needs {
            assert!(
                granted(&policy, action),
                "{action} is not granted:\n{policy:#}"
            );
        }
    }
    // Each entry needs its operation's own action (not some other one).
    for call in CALLS {
        if let Some(own) = own_action(call.service, call.operation) {
            assert!(
                call.needs.iter().any(|(a, _)| *a == own),
                "{} {} does not ask for {own}",
                call.service,
                call.operation
            );
        }
    }
    let src = source();
    let mut not_made = Vec::new();
    for call in CALLS {
        let name = snake(call.operation);
        assert!(
            src.contains(&format!(".{name}()")),
            "{} {}: lew's source never calls .{name}()",
            call.service,
            call.operation
        );
        let exercised = made.contains(&(call.service.to_string(), call.operation.to_string()));
        let excused = NOT_EXERCISED
            .iter()
            .any(|(s, o, _)| *s == call.service && *o == call.operation);
        let pushed = registry.is_some();
        // The login comes after the build, which needs the container environment.
        let push_only = call.operation == "GetAuthorizationToken";
        if !(exercised || excused || (push_only && !pushed)) {
            not_made.push(format!("{} {}", call.service, call.operation));
        }
    }
    assert!(
        not_made.is_empty(),
        "not called here: {not_made:?}; exercise them, or say why in NOT_EXERCISED"
    );
}

/// Every kind of drift `lew setup` repairs, made by hand on the emulator.
async fn drift(app: &App) {
    let aws = app.aws().await;
    let p = app.prefix();
    let bucket = app.bucket();
    // Config: the queue's visibility, the function's memory, the log retention, the task size.
    app.write_config(
        "[queue]\nvisibility_timeout_s = 1000\n[launcher]\nmemory_mb = 256\n\
         [worker]\ncpu = 2048\nmemory_mb = 4096\n[logs]\nretention_days = 30\n",
    );
    // IAM: a role's trust policy and tags.
    let role = format!("{p}-task");
    aws.iam
        .update_assume_role_policy()
        .role_name(&role)
        .policy_document(
            serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    aws.iam
        .untag_role()
        .role_name(&role)
        .tag_keys("lew:version")
        .send()
        .await
        .unwrap();
    // S3: encryption, policy, public access block, the notification.
    aws.s3
        .delete_bucket_encryption()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    aws.s3
        .delete_bucket_policy()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    aws.s3
        .delete_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    aws.s3
        .put_bucket_notification_configuration()
        .bucket(&bucket)
        .notification_configuration(aws_sdk_s3::types::NotificationConfiguration::builder().build())
        .send()
        .await
        .unwrap();
    // SQS: a tag.
    let queue_url = aws
        .sqs
        .get_queue_url()
        .queue_name(format!("{p}-jobs"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    aws.sqs
        .untag_queue()
        .queue_url(&queue_url)
        .tag_keys("lew:version")
        .send()
        .await
        .unwrap();
    // Lambda: the code, and S3's permission replaced by one for another account.
    let function = format!("{p}-launcher");
    aws.lambda
        .update_function_code()
        .function_name(&function)
        .zip_file(aws_sdk_lambda::primitives::Blob::new(tiny_zip()))
        .send()
        .await
        .unwrap();
    // A drift made a while before setup runs: the update has finished (the emulator, as AWS,
    // refuses another update meanwhile).
    use aws_sdk_lambda::client::Waiters as _;
    aws.lambda
        .wait_until_function_updated_v2()
        .function_name(&function)
        .wait(std::time::Duration::from_secs(60))
        .await
        .unwrap();
    aws.lambda
        .delete_function_concurrency()
        .function_name(&function)
        .send()
        .await
        .unwrap();
    aws.lambda
        .remove_permission()
        .function_name(&function)
        .statement_id(lew::resources::trigger::PERMISSION_SID)
        .send()
        .await
        .unwrap();
    aws.lambda
        .add_permission()
        .function_name(&function)
        .statement_id(lew::resources::trigger::PERMISSION_SID)
        .action("lambda:InvokeFunction")
        .principal("s3.amazonaws.com")
        .source_arn(format!("arn:aws:s3:::{bucket}"))
        .source_account("210987654321")
        .send()
        .await
        .unwrap();
    // ECS: the capacity providers; a worker task running (status describes it).
    let cluster = p.clone();
    aws.ecs
        .put_cluster_capacity_providers()
        .cluster(&cluster)
        .capacity_providers("FARGATE")
        .set_default_capacity_provider_strategy(Some(vec![]))
        .send()
        .await
        .unwrap();
    // ECR: scanning and the lifecycle rule.
    let repository = format!("{p}-worker");
    // boto3, because the Rust SDK leaves a false scanOnPush out of the request (its default),
    // which moto then takes as no change.
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let off = Command::new(python)
        .args([
            "-c",
            "import boto3, sys; boto3.client('ecr').put_image_scanning_configuration(\
            repositoryName=sys.argv[1], imageScanningConfiguration={'scanOnPush': False})",
        ])
        .arg(&repository)
        .env("AWS_ENDPOINT_URL", &app.endpoint)
        .env("AWS_DEFAULT_REGION", crate::support::REGION)
        .status()
        .unwrap();
    assert!(off.success());
    let scanning = aws
        .ecr
        .describe_repositories()
        .repository_names(&repository)
        .send()
        .await
        .unwrap()
        .repositories
        .unwrap()[0]
        .image_scanning_configuration
        .clone();
    assert_eq!(scanning.map(|s| s.scan_on_push), Some(false));
    aws.ecr
        .delete_lifecycle_policy()
        .repository_name(&repository)
        .send()
        .await
        .unwrap();
    // Logs: the launcher's group untagged, as Lambda makes it (setup adopts it). Untagged in
    // place: moto keeps a deleted group's tags for a new group of the same name.
    aws.logs
        .untag_resource()
        .resource_arn(app.arn("logs", &format!("log-group:/aws/lambda/{p}-launcher")))
        .tag_keys(lew::resources::APP_TAG)
        .tag_keys(lew::resources::VERSION_TAG)
        .send()
        .await
        .unwrap();
    // EC2: the worker's group lets traffic in and not out.
    let group = crate::support::read::security_groups(&aws, &format!("{p}-worker"))
        .await
        .remove(0);
    let group_id = group.group_id().unwrap();
    aws.ec2
        .authorize_security_group_ingress()
        .group_id(group_id)
        .ip_protocol("tcp")
        .from_port(22)
        .to_port(22)
        .cidr_ip("0.0.0.0/0")
        .send()
        .await
        .unwrap();
    aws.ec2
        .revoke_security_group_egress()
        .group_id(group_id)
        .set_ip_permissions(Some(group.ip_permissions_egress().to_vec()))
        .send()
        .await
        .unwrap();
    // EventBridge: the schedule changed, the task-stopped rule without its target and its
    // version tag; S3: lew's lifecycle rules gone.
    aws.events
        .put_rule()
        .name(format!("{p}-reconcile"))
        .schedule_expression("rate(1 hour)")
        .send()
        .await
        .unwrap();
    aws.events
        .remove_targets()
        .rule(format!("{p}-task-stopped"))
        .ids(lew::resources::events::TARGET_ID)
        .send()
        .await
        .unwrap();
    aws.events
        .untag_resource()
        .resource_arn(app.arn("events", &format!("rule/{p}-task-stopped")))
        .tag_keys(lew::resources::VERSION_TAG)
        .send()
        .await
        .unwrap();
    aws.s3
        .delete_bucket_lifecycle()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    run_worker_task(app, &aws).await;
}

/// A worker task as the launcher starts it (moto records it; status describes it).
async fn run_worker_task(app: &App, aws: &lew::aws::Aws) {
    let subnets: Vec<String> = aws
        .ec2
        .describe_subnets()
        .send()
        .await
        .unwrap()
        .subnets
        .unwrap()
        .into_iter()
        .filter_map(|s| s.subnet_id)
        .take(1)
        .collect();
    aws.ecs
        .run_task()
        .cluster(app.prefix())
        .task_definition(format!("{}-worker", app.prefix()))
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .started_by(lew::resources::STARTED_BY)
        .network_configuration(
            aws_sdk_ecs::types::NetworkConfiguration::builder()
                .awsvpc_configuration(
                    aws_sdk_ecs::types::AwsVpcConfiguration::builder()
                        .set_subnets(Some(subnets))
                        .security_groups("sg-00000000")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// A zip with one small file: a launcher code that is not lew's.
fn tiny_zip() -> Vec<u8> {
    use std::io::Write as _;
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buffer);
        zip.start_file("launcher.py", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"def handler(event, context):\n    return None\n")
            .unwrap();
        zip.finish().unwrap();
    }
    buffer.into_inner()
}

/// What parliament says of a deploy role that it must be, each with why. Anything else it finds
/// (an unknown action, a malformed ARN, an ARN of the wrong type for its action, ...) fails.
const ACCEPTED_FINDINGS: &[(&str, &str, &str)] = &[
    (
        "RESOURCE_POLICY_PRIVILEGE_ESCALATION",
        "but does allow s3:PutBucketPolicy",
        "setup writes the bucket policy (lew's TLS-only statement), which could grant object \
         access the role itself lacks",
    ),
    (
        "RESOURCE_POLICY_PRIVILEGE_ESCALATION",
        "but does allow s3:PutLifecycleConfiguration",
        "setup writes the bucket's lifecycle rules (lew's abort incomplete multipart uploads), \
         and an expiration rule could delete objects the role itself may not delete",
    ),
    (
        "CREDENTIALS_EXPOSURE",
        "ecr:getauthorizationtoken",
        "push-image logs in to ECR with this token; AWS allows it only on Resource *",
    ),
    (
        "PERMISSIONS_MANAGEMENT_ACTIONS",
        "iam:putrolepolicy",
        "setup makes the app's roles and their inline policies, and the queue, bucket and \
         function policies: a deploy role manages these by nature (docs/ci.md says so)",
    ),
    (
        "PRIVILEGE_ESCALATION",
        "EditExistingLambdaFunctionWithRole",
        "setup and deploy-lambda update the launcher's code, which runs with the app's role",
    ),
    (
        "RESOURCE_STAR",
        "ecs:ListTasks",
        "ListTasks cannot be scoped by ARN on Fargate; the ecs:cluster condition limits it",
    ),
];

/// The policy through parliament (tests/reliability/lint_iam.py, as tests/security.rs uses it):
/// only the findings above.
#[test]
fn parliament_finds_nothing_wrong_in_the_deploy_policy() {
    let app = App::new("");
    let policy = app.lew().arg("iam-policy").ok().json();
    let input = app.path().join("policies.json");
    let entry = serde_json::json!([{"name": "lew-deploy", "kind": "identity", "resource": "",
        "document": policy}]);
    std::fs::write(&input, entry.to_string()).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(repo.join(".venv/bin/python"))
        .arg(repo.join("tests/reliability/lint_iam.py"))
        .arg(&input)
        .output()
        .expect("cannot run .venv/bin/python (scripts/test makes the venv)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    for f in findings {
        let text = f.to_string();
        assert!(
            ACCEPTED_FINDINGS
                .iter()
                .any(|(issue, mark, _)| f["issue"] == *issue && text.contains(mark)),
            "parliament: {f:#}"
        );
    }
    assert!(!findings.is_empty(), "parliament ran on nothing? {report}");
}

#[test]
fn operation_names_become_the_sdks_method_names() {
    assert_eq!(snake("GetQueueUrl"), "get_queue_url");
    assert_eq!(snake("ListObjectsV2"), "list_objects_v2");
    assert_eq!(
        snake("PutBucketNotificationConfiguration"),
        "put_bucket_notification_configuration"
    );
    assert_eq!(snake("DescribeVpcs"), "describe_vpcs");
}
