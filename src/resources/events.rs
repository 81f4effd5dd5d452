//! The two EventBridge rules that invoke the launcher besides S3, so that no job waits for an
//! upload to get a worker:
//!
//! - `lew-<app>-task-stopped` matches ECS's "ECS Task State Change" events of lew's cluster
//!   with `lastStatus` STOPPED: a worker finished, was interrupted or was killed, and the
//!   launcher reconciles the jobs in the queue with the workers left at once;
//! - `lew-<app>-reconcile` fires on a schedule (`launcher.reconcile_every_min`, every 5 minutes
//!   by default), a safety net for what no event announces: a dead-letter batch moved back by
//!   hand, an event lost. With 0 the rule stays, DISABLED, so status and teardown treat it as
//!   any other.
//!
//! Each rule has one target of lew's (Id [`TARGET_ID`]), the launcher, and the launcher's
//! resource policy one statement per rule letting `events.amazonaws.com` invoke it from that
//! rule's ARN only. Other targets someone added to a rule are left alone (and go with it).
//!
//! The schedule is a rule on the default event bus rather than an EventBridge Scheduler
//! schedule: the same resource as the task-stopped rule (one SDK crate, one kind of Lambda
//! permission, no role for Scheduler to assume), and rules carry tags, which lew's ownership
//! rests on, while Scheduler tags only schedule groups, not schedules. AWS calls scheduled
//! rules "legacy" and recommends Scheduler for what it adds (time zones, one-off schedules,
//! flexible windows, scale), none of which a five-minute safety net needs.
//!
//! Neither costs anything while nothing happens: EventBridge does not charge for the events AWS
//! services publish to the default bus (ECS's, and the schedule's), and the launcher answers an
//! empty queue with one SQS call.

use anyhow::{Context as _, Result, bail};
use aws_sdk_eventbridge::error::SdkError;
use aws_sdk_eventbridge::operation::describe_rule::{DescribeRuleError, DescribeRuleOutput};
use aws_sdk_eventbridge::operation::list_tags_for_resource::ListTagsForResourceError;
use aws_sdk_eventbridge::operation::list_targets_by_rule::ListTargetsByRuleError;
use aws_sdk_eventbridge::operation::remove_targets::RemoveTargetsError;
use aws_sdk_eventbridge::types::{RuleState, Tag, Target};
use serde_json::{Value, json};

use super::{Deployment, Mode, Outcome, Removal, Removed, not_ours, permission, same_statement};

/// What this resource is called in reports.
pub const KIND: &str = "eventbridge rule";
/// The Id of lew's target (the launcher) on each rule.
pub const TARGET_ID: &str = "lew-launcher";

/// One of the two rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    TaskStopped,
    Schedule,
}

impl Which {
    pub const ALL: [Which; 2] = [Which::TaskStopped, Which::Schedule];

    pub fn name(self, d: &Deployment) -> &str {
        match self {
            Which::TaskStopped => &d.names.task_stopped_rule,
            Which::Schedule => &d.names.reconcile_rule,
        }
    }

    /// The statement id of the rule's permission in the launcher's resource policy.
    pub fn statement_id(self) -> &'static str {
        match self {
            Which::TaskStopped => "LewTaskStoppedInvoke",
            Which::Schedule => "LewScheduleInvoke",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Which::TaskStopped => {
                "lew: when a worker task stops, the launcher starts workers for the jobs left"
            }
            Which::Schedule => {
                "lew: the launcher starts workers for jobs no upload or task stop announced"
            }
        }
    }
}

/// A rule as lew wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub name: String,
    pub arn: String,
    /// The event pattern (the task-stopped rule), compared as JSON.
    pub pattern: Option<Value>,
    /// The schedule expression (the schedule rule).
    pub schedule: Option<String>,
    pub enabled: bool,
}

/// What lew wants of one rule.
pub fn spec(d: &Deployment, which: Which) -> Spec {
    let name = which.name(d).to_string();
    let arn = d.rule_arn(&name);
    match which {
        Which::TaskStopped => Spec {
            name,
            arn,
            pattern: Some(task_stopped_pattern(d)),
            schedule: None,
            enabled: true,
        },
        Which::Schedule => {
            let every = d.cfg.launcher.reconcile_every_min;
            Spec {
                name,
                arn,
                pattern: None,
                // A disabled rule keeps the default's expression: one EventBridge accepts.
                schedule: Some(rate(if every == 0 { 5 } else { every })),
                enabled: every > 0,
            }
        }
    }
}

/// ECS's events for lew's cluster's tasks that stopped (AWS's "Amazon ECS task state change
/// events": `source` aws.ecs, `detail-type` "ECS Task State Change", the task's `clusterArn`
/// and `lastStatus` in `detail`).
pub fn task_stopped_pattern(d: &Deployment) -> Value {
    json!({
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {
            "clusterArn": [d.cluster_arn()],
            "lastStatus": ["STOPPED"],
        },
    })
}

/// `rate(N minutes)`; EventBridge wants the unit singular for 1 and plural otherwise (AWS's
/// "Rate expressions reference": "rate(1 hours) and rate(5 hour) aren't valid").
pub fn rate(minutes: u32) -> String {
    if minutes == 1 {
        "rate(1 minute)".to_string()
    } else {
        format!("rate({minutes} minutes)")
    }
}

/// The launcher's permission for one rule, as Lambda reports it in GetPolicy.
pub fn permission_statement(d: &Deployment, which: Which) -> Value {
    json!({
        "Sid": which.statement_id(),
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": d.function_arn(),
        "Condition": {"ArnLike": {"AWS:SourceArn": d.rule_arn(which.name(d))}},
    })
}

/// A rule as EventBridge reports it: the rule, its tags and its targets (read at once).
struct Found {
    rule: DescribeRuleOutput,
    tags: Vec<Tag>,
    targets: Vec<Target>,
}

impl Found {
    fn owned(&self, d: &Deployment) -> bool {
        d.owns(self.tags.iter().map(|t| (t.key(), t.value())))
    }

    /// What differs from `want` in the rule itself.
    fn rule_differences(&self, want: &Spec) -> Vec<String> {
        let mut changes = Vec::new();
        let pattern = self
            .rule
            .event_pattern()
            .and_then(|p| serde_json::from_str::<Value>(p).ok());
        if pattern != want.pattern {
            changes.push("event pattern differs".to_string());
        }
        let schedule = self.rule.schedule_expression().map(str::to_string);
        if schedule != want.schedule {
            changes.push(format!(
                "schedule: {} → {}",
                schedule.as_deref().unwrap_or("none"),
                want.schedule.as_deref().unwrap_or("none")
            ));
        }
        let enabled = self.rule.state() == Some(&RuleState::Enabled);
        if enabled != want.enabled {
            changes.push(format!(
                "state: {} → {}",
                state_word(enabled),
                state_word(want.enabled)
            ));
        }
        changes
    }

    /// Whether lew's target is there and is the launcher, as it is.
    fn target_ok(&self, d: &Deployment) -> bool {
        self.targets.iter().any(|t| {
            t.id() == TARGET_ID
                && t.arn() == d.function_arn()
                && t.input().is_none()
                && t.input_path().is_none()
                && t.input_transformer().is_none()
        })
    }

    fn version_ok(&self) -> bool {
        self.tags
            .iter()
            .any(|t| t.key() == super::VERSION_TAG && t.value() == env!("CARGO_PKG_VERSION"))
    }
}

fn state_word(enabled: bool) -> &'static str {
    if enabled { "ENABLED" } else { "DISABLED" }
}

/// The rule with its tags and targets, or `None` when there is no such rule.
async fn find(d: &Deployment, name: &str) -> Result<Option<Found>> {
    let events = &d.aws.events;
    let arn = d.rule_arn(name);
    let (rule, tags, targets) = futures::join!(
        events.describe_rule().name(name).send(),
        events.list_tags_for_resource().resource_arn(&arn).send(),
        list_targets(d, name),
    );
    let rule = match rule {
        Ok(rule) => rule,
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), DescribeRuleError::ResourceNotFoundException(_)) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read EventBridge rule {name}")),
    };
    let tags = match tags {
        Ok(out) => out.tags.unwrap_or_default(),
        // Deleted between the two reads.
        Err(SdkError::ServiceError(e))
            if matches!(
                e.err(),
                ListTagsForResourceError::ResourceNotFoundException(_)
            ) =>
        {
            return Ok(None);
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the tags of EventBridge rule {name}"));
        }
    };
    Ok(Some(Found {
        rule,
        tags,
        targets: targets?.unwrap_or_default(),
    }))
}

/// Every target of a rule (`None` when the rule does not exist).
async fn list_targets(d: &Deployment, name: &str) -> Result<Option<Vec<Target>>> {
    let mut targets = Vec::new();
    let mut token = None;
    loop {
        let page = match d
            .aws
            .events
            .list_targets_by_rule()
            .rule(name)
            .set_next_token(token.take())
            .send()
            .await
        {
            Ok(page) => page,
            Err(SdkError::ServiceError(e))
                if matches!(
                    e.err(),
                    ListTargetsByRuleError::ResourceNotFoundException(_)
                ) =>
            {
                return Ok(None);
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot list the targets of EventBridge rule {name}")
                });
            }
        };
        targets.extend(page.targets().iter().cloned());
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => return Ok(Some(targets)),
        }
    }
}

/// The rule called `name` if it is there and this app's (for the leak check).
pub async fn owned_arn(d: &Deployment, name: &str) -> Result<Option<String>> {
    Ok(find(d, name)
        .await?
        .filter(|f| f.owned(d))
        .map(|_| d.rule_arn(name)))
}

/// Whether a rule of that name exists (whoever's it is).
pub async fn exists(d: &Deployment, name: &str) -> Result<bool> {
    Ok(find(d, name).await?.is_some())
}

/// Creates or converges both rules, their targets and the launcher's permissions. Everything
/// is read at once, right away (the function's policy once for both); the rules are written at
/// once too, and the permission and then the target (so the rule never invokes a launcher
/// that would refuse it) once the function is there (`function_ready`).
pub async fn ensure_all(
    d: &Deployment,
    mode: Mode,
    function_ready: impl Future<Output = Result<()>>,
) -> Vec<(String, Result<Outcome>)> {
    let function_ready = futures::FutureExt::shared(Box::pin(async {
        function_ready.await.map_err(|e| crate::error::one_line(&e))
    }));
    let (policy, found) = futures::join!(
        permission::statements(d),
        futures::future::join_all(Which::ALL.map(|w| find(d, w.name(d))))
    );
    let policy = policy.map_err(|e| crate::error::one_line(&e));
    let ensured = Which::ALL.into_iter().zip(found).map(|(which, found)| {
        let function_ready = function_ready.clone();
        let policy = policy.clone();
        async move {
            let ready = async { function_ready.await.map_err(anyhow::Error::msg) };
            let r = ensure_one(
                d,
                which,
                mode,
                found,
                policy.map_err(anyhow::Error::msg),
                ready,
            );
            (format!("{KIND} {}", which.name(d)), r.await)
        }
    });
    futures::future::join_all(ensured).await
}

async fn ensure_one(
    d: &Deployment,
    which: Which,
    mode: Mode,
    found: Result<Option<Found>>,
    policy: Result<Vec<Value>>,
    function_ready: impl Future<Output = Result<()>>,
) -> Result<Outcome> {
    let want = spec(d, which);
    let mut outcome = Outcome::new(KIND, format!("{} → {}", want.name, d.names.function));
    if which == Which::Schedule {
        outcome = outcome.note(match d.cfg.launcher.reconcile_every_min {
            0 => "disabled: launcher.reconcile_every_min = 0".to_string(),
            1 => "every minute".to_string(),
            n => format!("every {n} minutes"),
        });
    }
    let found = found?;
    if let Some(f) = &found
        && !f.owned(d)
    {
        return Err(not_ours("EventBridge rule", &want.name, &d.cfg.app));
    }
    let statement = permission_statement(d, which);
    let policy = policy?;
    let permission = permission::with_sid(&policy, which.statement_id());
    let permission_ok = permission
        .as_ref()
        .is_some_and(|have| same_statement(have, &statement));

    let (rule_changes, target_ok, version_ok) = match &found {
        None => (None, false, false),
        Some(f) => (
            Some(f.rule_differences(&want)),
            f.target_ok(d),
            f.version_ok(),
        ),
    };
    let mut changes = rule_changes.clone().unwrap_or_default();
    if found.is_some() && !target_ok {
        changes.push(format!("target {TARGET_ID}: missing or not the launcher"));
    }
    if !permission_ok {
        changes.push(format!(
            "launcher permission {}: {}",
            which.statement_id(),
            if permission.is_some() {
                "differs"
            } else {
                "missing"
            }
        ));
    }
    if found.is_some() && !version_ok {
        changes.push(format!(
            "tag {}: → {}",
            super::VERSION_TAG,
            env!("CARGO_PKG_VERSION")
        ));
    }
    let outcome = if found.is_none() {
        outcome.created()
    } else {
        outcome.with_changes(changes)
    };
    if mode == Mode::Plan || outcome.action == super::Action::Unchanged {
        return Ok(outcome);
    }

    // The rule first: it needs nothing else. PutRule creates or updates; tags go with a new
    // rule, and onto an existing one with TagResource.
    if rule_changes.as_ref().is_none_or(|c| !c.is_empty()) {
        put_rule(d, which, &want, found.is_none()).await?;
    }
    if found.is_some() && !version_ok {
        d.aws
            .events
            .tag_resource()
            .resource_arn(&want.arn)
            .set_tags(Some(tags(d)))
            .send()
            .await
            .with_context(|| format!("cannot tag EventBridge rule {}", want.name))?;
    }
    if !permission_ok || !target_ok {
        function_ready.await?;
    }
    if !permission_ok {
        if permission.is_some() {
            remove_permission(d, which).await?;
        }
        add_permission(d, which).await?;
    }
    if !target_ok {
        put_target(d, &want.name).await?;
    }
    Ok(outcome)
}

/// The launcher's permission for each rule that exists, added where it is missing or differs
/// (`lew deploy-lambda`: a function recreated by hand has lost them, and EventBridge's
/// invocations would fail unseen). The rules themselves are `setup`'s.
pub async fn ensure_permissions(d: &Deployment) -> Result<Vec<Outcome>> {
    let (policy, found) = futures::join!(
        permission::statements(d),
        futures::future::join_all(Which::ALL.map(|w| find(d, w.name(d))))
    );
    let policy = policy?;
    let mut outcomes = Vec::new();
    for (which, found) in Which::ALL.into_iter().zip(found) {
        if found?.is_none() {
            continue;
        }
        let outcome = Outcome::new(
            super::trigger::PERMISSION_KIND,
            format!("{} ({})", d.names.function, which.statement_id()),
        );
        let have = permission::with_sid(&policy, which.statement_id());
        match have {
            Some(have) if same_statement(have, &permission_statement(d, which)) => {
                outcomes.push(outcome.with_changes(Vec::new()));
            }
            Some(_) => {
                remove_permission(d, which).await?;
                add_permission(d, which).await?;
                outcomes.push(outcome.with_changes(vec!["source rule differs".into()]));
            }
            None => {
                add_permission(d, which).await?;
                outcomes.push(outcome.created());
            }
        }
    }
    Ok(outcomes)
}

fn tags(d: &Deployment) -> Vec<Tag> {
    d.tags()
        .into_iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value set")
        })
        .collect()
}

async fn put_rule(d: &Deployment, which: Which, want: &Spec, new: bool) -> Result<()> {
    let req = d
        .aws
        .events
        .put_rule()
        .name(&want.name)
        .description(which.description())
        .set_event_pattern(want.pattern.as_ref().map(Value::to_string))
        .set_schedule_expression(want.schedule.clone())
        .state(if want.enabled {
            RuleState::Enabled
        } else {
            RuleState::Disabled
        });
    // Tags given with PutRule apply only when it creates the rule.
    let req = if new {
        req.set_tags(Some(tags(d)))
    } else {
        req
    };
    req.send()
        .await
        .with_context(|| format!("cannot put EventBridge rule {}", want.name))?;
    Ok(())
}

async fn put_target(d: &Deployment, rule: &str) -> Result<()> {
    let target = Target::builder()
        .id(TARGET_ID)
        .arn(d.function_arn())
        .build()
        .context("an EventBridge target")?;
    let out = d
        .aws
        .events
        .put_targets()
        .rule(rule)
        .targets(target)
        .send()
        .await
        .with_context(|| format!("cannot point EventBridge rule {rule} at the launcher"))?;
    if let Some(failed) = out.failed_entries().first() {
        bail!(
            "cannot point EventBridge rule {rule} at the launcher: {} {}",
            failed.error_code().unwrap_or("error"),
            failed.error_message().unwrap_or_default()
        );
    }
    Ok(())
}

async fn add_permission(d: &Deployment, which: Which) -> Result<()> {
    let invoker = permission::Invoker {
        sid: which.statement_id(),
        principal: "events.amazonaws.com",
        source_arn: d.rule_arn(which.name(d)),
        source_account: None,
        who: format!("EventBridge rule {}", which.name(d)),
    };
    permission::add(d, &invoker).await
}

async fn remove_permission(d: &Deployment, which: Which) -> Result<()> {
    permission::remove(d, which.statement_id()).await?;
    Ok(())
}

/// Deletes one rule if it is this app's: its targets first (EventBridge refuses to delete a
/// rule that has any), then the rule. The launcher's permission for it goes with the function.
pub async fn delete(d: &Deployment, which: Which) -> Result<Removed> {
    let name = which.name(d).to_string();
    let Some(found) = find(d, &name).await? else {
        return Ok(Removed::new(KIND, name, Removal::AlreadyGone));
    };
    if !found.owned(d) {
        return Ok(Removed::new(KIND, name, Removal::NotOwned));
    }
    let ids: Vec<String> = found.targets.iter().map(|t| t.id().to_string()).collect();
    for chunk in ids.chunks(100) {
        let removed = d
            .aws
            .events
            .remove_targets()
            .rule(&name)
            .set_ids(Some(chunk.to_vec()))
            .send()
            .await;
        match removed {
            // A target that failed to go makes DeleteRule fail next, naming the rule.
            Ok(_) => {}
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), RemoveTargetsError::ResourceNotFoundException(_)) =>
            {
                return Ok(Removed::new(KIND, name, Removal::AlreadyGone));
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot remove the targets of EventBridge rule {name}")
                });
            }
        }
    }
    // AWS's DeleteRule: "If you call delete rule multiple times for the same rule, all calls
    // will succeed", so a rule deleted meanwhile is no error here.
    d.aws
        .events
        .delete_rule()
        .name(&name)
        .send()
        .await
        .with_context(|| format!("cannot delete EventBridge rule {name}"))?;
    Ok(Removed::new(KIND, name, Removal::Deleted))
}

#[cfg(test)]
mod tests {
    use aws_sdk_eventbridge::Client;
    use aws_sdk_eventbridge::operation::delete_rule::DeleteRuleOutput;
    use aws_sdk_eventbridge::operation::list_tags_for_resource::ListTagsForResourceOutput;
    use aws_sdk_eventbridge::operation::list_targets_by_rule::ListTargetsByRuleOutput;
    use aws_sdk_eventbridge::operation::remove_targets::RemoveTargetsOutput;
    use aws_sdk_eventbridge::types::error::ResourceNotFoundException;
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::resources::mock::{Mocks, lew_tags, meta};

    const RULE: &str = "lew-unit-task-stopped";

    fn described() -> Rule {
        mock!(Client::describe_rule)
            .match_requests(|r| r.name() == Some(RULE))
            .then_output(|| DescribeRuleOutput::builder().name(RULE).build())
    }

    fn tagged(tags: Vec<(String, String)>) -> Rule {
        mock!(Client::list_tags_for_resource).then_output(move || {
            ListTagsForResourceOutput::builder()
                .set_tags(Some(
                    tags.iter()
                        .map(|(k, v)| Tag::builder().key(k).value(v).build().unwrap())
                        .collect(),
                ))
                .build()
        })
    }

    fn targets(ids: &'static [&'static str]) -> Rule {
        mock!(Client::list_targets_by_rule).then_output(move || {
            ListTargetsByRuleOutput::builder()
                .set_targets(Some(
                    ids.iter()
                        .map(|id| Target::builder().id(*id).arn("arn:x").build().unwrap())
                        .collect(),
                ))
                .build()
        })
    }

    #[tokio::test]
    async fn a_rule_goes_with_every_target_it_has() {
        // EventBridge refuses DeleteRule while a rule has targets, lew's or anyone's.
        let remove = mock!(Client::remove_targets)
            .match_requests(|r| r.rule() == Some(RULE) && r.ids() == [TARGET_ID, "theirs"])
            .then_output(|| RemoveTargetsOutput::builder().failed_entry_count(0).build());
        let delete_rule = mock!(Client::delete_rule)
            .match_requests(|r| r.name() == Some(RULE))
            .then_output(|| DeleteRuleOutput::builder().build());
        let (d, _) = Mocks::new()
            .events(&[
                &described(),
                &tagged(lew_tags()),
                &targets(&[TARGET_ID, "theirs"]),
                &remove,
                &delete_rule,
            ])
            .deployment()
            .await;

        let removed = delete(&d, Which::TaskStopped).await.unwrap();

        assert_eq!(removed.result, Removal::Deleted);
        assert_eq!((remove.num_calls(), delete_rule.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn a_rule_that_is_gone_or_not_ours_is_left_as_it_is() {
        let missing = mock!(Client::describe_rule).then_error(|| {
            DescribeRuleError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .message("Rule lew-unit-task-stopped does not exist.")
                    .meta(meta("ResourceNotFoundException", "does not exist"))
                    .build(),
            )
        });
        let not_found = || {
            ListTargetsByRuleError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .meta(meta("ResourceNotFoundException", "does not exist"))
                    .build(),
            )
        };
        let no_tags = mock!(Client::list_tags_for_resource).then_error(|| {
            ListTagsForResourceError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .meta(meta("ResourceNotFoundException", "does not exist"))
                    .build(),
            )
        });
        let no_targets = mock!(Client::list_targets_by_rule).then_error(not_found);
        let (d, _) = Mocks::new()
            .events(&[&missing, &no_tags, &no_targets])
            .deployment()
            .await;
        assert_eq!(
            delete(&d, Which::TaskStopped).await.unwrap().result,
            Removal::AlreadyGone
        );

        // Another app's rule of that name: nothing after the reads (no rule would match).
        let other = vec![(super::super::APP_TAG.to_string(), "other".to_string())];
        let (d, _) = Mocks::new()
            .events(&[&described(), &tagged(other), &targets(&[TARGET_ID])])
            .deployment()
            .await;
        assert_eq!(
            delete(&d, Which::TaskStopped).await.unwrap().result,
            Removal::NotOwned
        );
    }

    #[test]
    fn rates_are_singular_for_one_minute() {
        assert_eq!(rate(1), "rate(1 minute)");
        assert_eq!(rate(5), "rate(5 minutes)");
        assert_eq!(rate(1440), "rate(1440 minutes)");
    }

    #[tokio::test]
    async fn a_schedule_of_zero_keeps_a_disabled_rule() {
        let (d, _) = Mocks::new()
            .config("[launcher]\nreconcile_every_min = 0\n")
            .deployment()
            .await;
        let s = spec(&d, Which::Schedule);
        assert!(!s.enabled);
        assert_eq!(s.schedule.as_deref(), Some("rate(5 minutes)"));
        assert_eq!(
            s.arn,
            "arn:aws:events:eu-west-1:123456789012:rule/lew-unit-reconcile"
        );
        let (d, _) = Mocks::new()
            .config("[launcher]\nreconcile_every_min = 1\n")
            .deployment()
            .await;
        assert_eq!(
            spec(&d, Which::Schedule).schedule.as_deref(),
            Some("rate(1 minute)")
        );
    }
}
