//! The EventBridge rules that have the launcher reconcile (when a worker task stops, and on a
//! schedule): what setup creates, what status and setup do about drift, what teardown and its
//! leak check do; everything read back from moto with the SDK.

use aws_sdk_eventbridge::types::{RuleState, Target};
use lew::config::Config;
use lew::progress::Progress;
use lew::resources::{Deployment, leaks};
use serde_json::{Value, json};

use crate::support::App;
use crate::support::read::function_policy;

fn rules(app: &App) -> [String; 2] {
    [
        format!("{}-task-stopped", app.prefix()),
        format!("{}-reconcile", app.prefix()),
    ]
}

fn function_arn(app: &App) -> String {
    app.arn("lambda", &format!("function:{}-launcher", app.prefix()))
}

async fn targets(app: &App, rule: &str) -> Vec<Target> {
    app.aws()
        .await
        .events
        .list_targets_by_rule()
        .rule(rule)
        .send()
        .await
        .unwrap()
        .targets
        .unwrap_or_default()
}

/// The launcher's permission statement for `rule`: events.amazonaws.com from that rule only.
fn permission_for<'a>(statements: &'a [Value], app: &App, rule: &str) -> Option<&'a Value> {
    let arn = app.arn("events", &format!("rule/{rule}"));
    statements.iter().find(|s| {
        s["Principal"]["Service"] == "events.amazonaws.com"
            && s["Action"] == "lambda:InvokeFunction"
            && s["Condition"]["ArnLike"]["AWS:SourceArn"] == arn.as_str()
    })
}

/// A resource's state and differences in a `status --output json` report.
fn state(status: &Value, name: &str) -> (String, String) {
    let r = status["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["resource"] == "eventbridge rule" && r["name"].as_str().unwrap().starts_with(name)
        })
        .unwrap_or_else(|| panic!("no eventbridge rule {name} in {status}"));
    (
        r["state"].as_str().unwrap().to_string(),
        r["differences"].to_string(),
    )
}

#[tokio::test]
async fn setup_has_ecs_task_stops_and_a_schedule_invoke_the_launcher() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let aws = app.aws().await;
    let [stopped, schedule] = rules(&app);

    let rule = aws
        .events
        .describe_rule()
        .name(&stopped)
        .send()
        .await
        .unwrap();
    let pattern: Value = serde_json::from_str(rule.event_pattern().unwrap()).unwrap();
    assert_eq!(
        pattern,
        json!({
            "source": ["aws.ecs"],
            "detail-type": ["ECS Task State Change"],
            "detail": {
                "clusterArn": [app.arn("ecs", &format!("cluster/{}", app.prefix()))],
                "lastStatus": ["STOPPED"],
            },
        })
    );
    assert_eq!(rule.state(), Some(&RuleState::Enabled));
    assert_eq!(rule.schedule_expression(), None);

    let rule = aws
        .events
        .describe_rule()
        .name(&schedule)
        .send()
        .await
        .unwrap();
    assert_eq!(rule.schedule_expression(), Some("rate(5 minutes)"));
    assert_eq!(rule.state(), Some(&RuleState::Enabled));
    assert_eq!(rule.event_pattern(), None);

    let statements = function_policy(&aws, &format!("{}-launcher", app.prefix())).await;
    for name in [&stopped, &schedule] {
        let listed = targets(&app, name).await;
        assert_eq!(listed.len(), 1, "{name}: {listed:?}");
        assert_eq!(listed[0].id(), "lew-launcher");
        assert_eq!(listed[0].arn(), function_arn(&app));
        assert!(listed[0].input().is_none() && listed[0].input_transformer().is_none());
        let tags = aws
            .events
            .list_tags_for_resource()
            .resource_arn(app.arn("events", &format!("rule/{name}")))
            .send()
            .await
            .unwrap();
        assert!(
            tags.tags()
                .iter()
                .any(|t| t.key() == "lew:app" && t.value() == app.name),
            "{name}: {tags:?}"
        );
        let permission = permission_for(&statements, &app, name)
            .unwrap_or_else(|| panic!("no permission for {name}: {statements:?}"));
        assert_eq!(permission["Resource"], function_arn(&app));
    }
    // S3's, and one per rule: nothing broader.
    assert_eq!(statements.len(), 3, "{statements:?}");

    // The launcher may count the jobs of its own queue, and nothing more than before.
    let policy = aws
        .iam
        .get_role_policy()
        .role_name(format!("{}-launcher", app.prefix()))
        .policy_name("lew")
        .send()
        .await
        .unwrap();
    let policy: Value =
        serde_json::from_str(&lew::resources::percent_decode(policy.policy_document())).unwrap();
    let count = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Action"] == "sqs:GetQueueAttributes")
        .expect("sqs:GetQueueAttributes for the launcher");
    assert_eq!(
        count["Resource"],
        app.arn("sqs", &format!("{}-jobs", app.prefix()))
    );
}

#[tokio::test]
async fn drifted_rules_are_reported_and_repaired_and_other_targets_kept() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let aws = app.aws().await;
    let [stopped, schedule] = rules(&app);
    let function = format!("{}-launcher", app.prefix());
    // Hand edits: another schedule, lew's target gone from one rule, a permission gone, and a
    // target of someone else's on the other rule.
    aws.events
        .put_rule()
        .name(&schedule)
        .schedule_expression("rate(1 hour)")
        .send()
        .await
        .unwrap();
    aws.events
        .remove_targets()
        .rule(&stopped)
        .ids("lew-launcher")
        .send()
        .await
        .unwrap();
    aws.lambda
        .remove_permission()
        .function_name(&function)
        .statement_id("LewScheduleInvoke")
        .send()
        .await
        .unwrap();
    let theirs = Target::builder()
        .id("theirs")
        .arn(app.arn("sqs", "someone-elses-queue"))
        .build()
        .unwrap();
    aws.events
        .put_targets()
        .rule(&schedule)
        .targets(theirs)
        .send()
        .await
        .unwrap();

    // Drift makes status exit 4 (for a CI gate).
    let status = app
        .lew()
        .args(["--output", "json", "status"])
        .code(4)
        .json();
    let (s, diff) = state(&status, &stopped);
    assert_eq!(s, "drifted");
    assert!(diff.contains("target lew-launcher"), "{diff}");
    let (s, diff) = state(&status, &schedule);
    assert_eq!(s, "drifted");
    assert!(diff.contains("rate(1 hour) → rate(5 minutes)"), "{diff}");
    assert!(diff.contains("LewScheduleInvoke: missing"), "{diff}");

    app.lew().arg("setup").ok();
    let status = app.lew().args(["--output", "json", "status"]).ok().json();
    assert_eq!(state(&status, &stopped).0, "present");
    assert_eq!(state(&status, &schedule).0, "present");
    let rule = aws
        .events
        .describe_rule()
        .name(&schedule)
        .send()
        .await
        .unwrap();
    assert_eq!(rule.schedule_expression(), Some("rate(5 minutes)"));
    let mut ids: Vec<String> = targets(&app, &schedule)
        .await
        .iter()
        .map(|t| t.id().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["lew-launcher", "theirs"]);
    assert_eq!(targets(&app, &stopped).await.len(), 1);
    let statements = function_policy(&aws, &function).await;
    assert!(permission_for(&statements, &app, &schedule).is_some());
}

#[tokio::test]
async fn the_schedule_follows_reconcile_every_min_and_zero_disables_it() {
    let app = App::new("[launcher]\nreconcile_every_min = 0\n");
    let setup = app.lew().args(["--output", "json", "setup"]).ok().json();
    let aws = app.aws().await;
    let [_, schedule] = rules(&app);
    let rule = aws
        .events
        .describe_rule()
        .name(&schedule)
        .send()
        .await
        .unwrap();
    assert_eq!(rule.state(), Some(&RuleState::Disabled));
    let line = setup["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"].as_str().unwrap().starts_with(&schedule))
        .unwrap();
    assert!(
        line["note"].as_str().unwrap().contains("disabled"),
        "{line}"
    );

    app.write_config("[launcher]\nreconcile_every_min = 1\n");
    let setup = app.lew().args(["--output", "json", "setup"]).ok().json();
    let rule = aws
        .events
        .describe_rule()
        .name(&schedule)
        .send()
        .await
        .unwrap();
    assert_eq!(rule.state(), Some(&RuleState::Enabled));
    assert_eq!(rule.schedule_expression(), Some("rate(1 minute)"));
    assert!(
        setup.to_string().contains("state: DISABLED → ENABLED"),
        "{setup}"
    );

    // Out of range: a usage error before any call.
    app.write_config("[launcher]\nreconcile_every_min = 1441\n");
    let run = app.lew().arg("setup").code(2);
    assert!(
        run.stderr.contains("launcher.reconcile_every_min"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn teardown_removes_the_rules_and_its_leak_check_looks_for_them() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let aws = app.aws().await;
    let [stopped, schedule] = rules(&app);
    // A target someone added: the rule still goes (EventBridge deletes no rule with targets).
    let theirs = Target::builder()
        .id("theirs")
        .arn(app.arn("sqs", "someone-elses-queue"))
        .build()
        .unwrap();
    aws.events
        .put_targets()
        .rule(&stopped)
        .targets(theirs)
        .send()
        .await
        .unwrap();

    // The leak check finds the rules (moto's tagging API does not list EventBridge rules: it
    // looks them up itself).
    let cfg = Config::parse(&std::fs::read_to_string(app.config_path()).unwrap()).unwrap();
    let d = Deployment::new(cfg, app.aws().await, Progress::hidden());
    let left = leaks::check(&d, true).await.unwrap();
    for name in [&stopped, &schedule] {
        let arn = app.arn("events", &format!("rule/{name}"));
        assert!(left.contains(&arn), "{arn} not in {left:?}");
    }

    let report = app
        .lew()
        .args(["--output", "json", "teardown", "--yes"])
        .ok()
        .json();
    assert_eq!(report["leftovers"], json!([]), "{report}");
    let removed: Vec<(String, String)> = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                format!(
                    "{} {}",
                    r["resource"].as_str().unwrap(),
                    r["name"].as_str().unwrap()
                ),
                r["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let position = |what: &str| removed.iter().position(|(w, _)| w == what).unwrap();
    for name in [&stopped, &schedule] {
        let what = format!("eventbridge rule {name}");
        assert_eq!(removed[position(&what)].1, "deleted", "{removed:?}");
        // Reported (and removed) before the function they point at.
        let function = format!("lambda function {}-launcher", app.prefix());
        assert!(position(&what) < position(&function), "{removed:?}");
        assert!(aws.events.describe_rule().name(name).send().await.is_err());
    }
}

#[tokio::test]
async fn a_rule_of_that_name_lew_did_not_create_is_neither_changed_nor_deleted() {
    let app = App::new("");
    let aws = app.aws().await;
    let [stopped, _] = rules(&app);
    aws.events
        .put_rule()
        .name(&stopped)
        .schedule_expression("rate(1 day)")
        .send()
        .await
        .unwrap();

    let run = app.lew().arg("setup").code(1);
    assert!(
        run.stdout.contains(&format!(
            "EventBridge rule {stopped} exists but is not tagged"
        )),
        "{}",
        run.stdout
    );
    let rule = aws
        .events
        .describe_rule()
        .name(&stopped)
        .send()
        .await
        .unwrap();
    assert_eq!(rule.schedule_expression(), Some("rate(1 day)"));
    assert!(targets(&app, &stopped).await.is_empty());

    let report = app
        .lew()
        .args(["--output", "json", "teardown", "--yes"])
        .ok()
        .json();
    assert!(
        report["resources"].to_string().contains("not_owned"),
        "{report}"
    );
    assert!(
        aws.events
            .describe_rule()
            .name(&stopped)
            .send()
            .await
            .is_ok()
    );
    aws.events
        .delete_rule()
        .name(&stopped)
        .send()
        .await
        .unwrap();
}
