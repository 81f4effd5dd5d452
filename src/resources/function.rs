//! The launcher Lambda function `lew-<app>-launcher`.
//!
//! Its code is the launcher embedded in lew, zipped in memory with fixed timestamps, so the
//! code is uploaded only when its SHA-256 differs from what Lambda reports. Configuration is
//! compared field by field and updated only where it differs. A role that was just created
//! may not be assumable by Lambda for some seconds; creation retries on that typed error.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use aws_sdk_lambda::client::Waiters as _;
use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::operation::create_function::CreateFunctionError;
use aws_sdk_lambda::operation::create_function::builders::CreateFunctionFluentBuilder;
use aws_sdk_lambda::operation::delete_function::DeleteFunctionError;
use aws_sdk_lambda::operation::get_function::{GetFunctionError, GetFunctionOutput};
use aws_sdk_lambda::operation::get_function_event_invoke_config::GetFunctionEventInvokeConfigError;
use aws_sdk_lambda::operation::list_tags::ListTagsError;
use aws_sdk_lambda::operation::put_function_concurrency::PutFunctionConcurrencyError;
use aws_sdk_lambda::operation::put_function_event_invoke_config::PutFunctionEventInvokeConfigError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{DestinationConfig, Environment, FunctionCode, OnFailure, Runtime};
use serde::Serialize;

use super::network::Network;
use super::{CONTAINER, Deployment, Mode, Outcome, Removal, Removed, STARTED_BY};
use crate::embedded;

/// What this resource is called in reports.
pub const KIND: &str = "lambda function";

pub const RUNTIME: Runtime = Runtime::Python312;
/// Lambda's own retries of a failed launch (its default is also 2; set so it is explicit).
pub const ASYNC_RETRIES: i32 = 2;
/// How long Lambda keeps trying an S3 event (its maximum, 6 h: a burst of uploads queues up
/// behind the single reserved launcher). An event that fails or outlives it goes to the
/// dead-letter queue (the on-failure destination), where `lew status` shows it.
pub const ASYNC_MAX_AGE_S: i32 = 21_600;
/// One launcher at a time, so two concurrent invocations cannot both count the same running
/// tasks and together start more than `worker.max_tasks`. Bursts queue up inside Lambda.
pub const RESERVED_CONCURRENCY: i32 = 1;
/// Waiting for a new role to become assumable: attempts and the pause between them.
pub const IAM_ATTEMPTS: u32 = 12;
const WAIT: Duration = Duration::from_secs(120);

/// What lew configures on the function, in a form that compares and reports well.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    pub runtime: String,
    pub handler: String,
    pub role: String,
    pub memory_mb: i32,
    pub timeout_s: i32,
    pub environment: BTreeMap<String, String>,
}

/// The launcher's environment: the contract between lew and `launcher/launcher.py`.
pub fn environment(d: &Deployment, queue_url: &str, network: &Network) -> BTreeMap<String, String> {
    let c = &d.cfg;
    [
        ("LEW_QUEUE_URL", queue_url.to_string()),
        ("LEW_CLUSTER", d.names.cluster.clone()),
        ("LEW_TASK_FAMILY", d.names.task_family.clone()),
        ("LEW_CONTAINER_NAME", CONTAINER.to_string()),
        ("LEW_SUBNETS", network.subnets.join(",")),
        ("LEW_SECURITY_GROUPS", network.security_groups.join(",")),
        (
            "LEW_ASSIGN_PUBLIC_IP",
            if c.network.assign_public_ip {
                "ENABLED"
            } else {
                "DISABLED"
            }
            .to_string(),
        ),
        ("LEW_MAX_TASKS", c.worker.max_tasks.to_string()),
        (
            "LEW_CAPACITY_PROVIDER",
            if c.worker.spot {
                "FARGATE_SPOT"
            } else {
                "FARGATE"
            }
            .to_string(),
        ),
        ("LEW_INPUT_PREFIX", c.bucket.input_prefix.clone()),
        ("LEW_INPUT_SUFFIX", ".zip".to_string()),
        ("LEW_STARTED_BY", STARTED_BY.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

pub fn desired(d: &Deployment, queue_url: &str, network: &Network) -> Settings {
    Settings {
        runtime: RUNTIME.as_str().to_string(),
        handler: embedded::LAUNCHER_HANDLER.to_string(),
        role: d.role_arn(&d.names.launcher_role),
        memory_mb: d.cfg.launcher.memory_mb as i32,
        timeout_s: d.cfg.launcher.timeout_s as i32,
        environment: environment(d, queue_url, network),
    }
}

impl Settings {
    fn lambda_environment(&self) -> Environment {
        Environment::builder()
            .set_variables(Some(self.environment.clone().into_iter().collect()))
            .build()
    }

    fn from_function(out: &GetFunctionOutput) -> Option<Settings> {
        let c = out.configuration()?;
        Some(Settings {
            runtime: c
                .runtime()
                .map_or(String::new(), |r| r.as_str().to_string()),
            handler: c.handler().unwrap_or_default().to_string(),
            role: c.role().unwrap_or_default().to_string(),
            memory_mb: c.memory_size().unwrap_or(0),
            timeout_s: c.timeout().unwrap_or(0),
            environment: c
                .environment()
                .and_then(|e| e.variables())
                .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        })
    }

    fn differences(&self, want: &Settings) -> Vec<String> {
        let mut out = Vec::new();
        super::compare(&mut out, "runtime", &self.runtime, &want.runtime);
        super::compare(&mut out, "handler", &self.handler, &want.handler);
        super::compare(&mut out, "role", &self.role, &want.role);
        super::compare(&mut out, "memory_mb", self.memory_mb, want.memory_mb);
        super::compare(&mut out, "timeout_s", self.timeout_s, want.timeout_s);
        for (k, v) in &want.environment {
            match self.environment.get(k) {
                Some(have) if have == v => {}
                Some(have) => out.push(format!("environment {k}: {have} → {v}")),
                None => out.push(format!("environment {k}: (unset) → {v}")),
            }
        }
        for k in self.environment.keys() {
            if !want.environment.contains_key(k) {
                out.push(format!("environment {k}: remove"));
            }
        }
        out
    }
}

pub async fn get(d: &Deployment) -> Result<Option<GetFunctionOutput>> {
    let name = &d.names.function;
    match d.aws.lambda.get_function().function_name(name).send().await {
        Ok(out) => Ok(Some(out)),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), GetFunctionError::ResourceNotFoundException(_)) =>
        {
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read Lambda function {name}")),
    }
}

/// Whether the function is this app's, by its tags.
///
/// GetFunction returns them only to a caller who may call ListTags (its API reference: "Lambda
/// returns tag data only if you have explicit allow permissions for lambda:ListTags"), so
/// without that permission every function would look like someone else's. Without tags, lew
/// reads what GetFunction says went wrong, or asks ListTags itself, and names the missing
/// permission instead of claiming the function is not lew's.
pub async fn owned(d: &Deployment, out: &GetFunctionOutput) -> Result<bool> {
    let owns = |t: &std::collections::HashMap<String, String>| {
        d.owns(t.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    };
    if let Some(tags) = out.tags().filter(|t| !t.is_empty()) {
        return Ok(owns(tags));
    }
    let name = &d.names.function;
    let arn = d.function_arn();
    let missing = |why: &str| {
        anyhow::anyhow!(
            "cannot tell whether Lambda function {name} is lew's: its tags cannot be read \
             ({why}); allow lambda:ListTags on {arn} to the credentials lew runs with (GetFunction \
             returns a function's tags only with that permission)"
        )
    };
    if let Some(e) = out.tags_error() {
        return Err(missing(&format!("{}: {}", e.error_code(), e.message())));
    }
    match d.aws.lambda.list_tags().resource(&arn).send().await {
        Ok(listed) => Ok(listed.tags().is_some_and(owns)),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), ListTagsError::ResourceNotFoundException(_)) =>
        {
            Ok(false)
        }
        Err(SdkError::ServiceError(e))
            if aws_sdk_lambda::error::ProvideErrorMetadata::code(e.err())
                == Some("AccessDeniedException") =>
        {
            Err(missing(&super::short_error(e.err())))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read the tags of {name}")),
    }
}

/// Creates the function or converges its code and configuration.
pub async fn ensure(
    d: &Deployment,
    queue_url: &str,
    network: &Network,
    mode: Mode,
) -> Result<Outcome> {
    ensure_when(
        d,
        async { Ok((queue_url.to_string(), network.clone())) },
        mode,
    )
    .await
}

/// [`ensure`] for inputs that are still being worked out (the queue's URL and the network):
/// the function is read while they are.
pub async fn ensure_when(
    d: &Deployment,
    inputs: impl Future<Output = Result<(String, Network)>>,
    mode: Mode,
) -> Result<Outcome> {
    let lambda = &d.aws.lambda;
    let name = d.names.function.clone();
    let outcome = Outcome::new(KIND, &name);
    let (existing, retries_ok, inputs) = futures::join!(get(d), read_retries(d), inputs);
    let (queue_url, network) = inputs?;
    let want = desired(d, &queue_url, &network);
    let package = embedded::launcher_zip();
    let sha = embedded::code_sha256(&package);

    let Some(existing) = existing? else {
        if mode == Mode::Apply {
            let step = d.progress.step(format!("lambda function {name}"));
            let mut req = lambda
                .create_function()
                .function_name(&name)
                .description("lew launcher: queues render jobs and starts worker tasks")
                .runtime(RUNTIME)
                .handler(&want.handler)
                .role(&want.role)
                .memory_size(want.memory_mb)
                .timeout(want.timeout_s)
                .environment(want.lambda_environment())
                .code(FunctionCode::builder().zip_file(Blob::new(package)).build());
            for (k, v) in d.tags() {
                req = req.tags(k, v);
            }
            create_with_retry(d, req, |msg| step.note(msg)).await?;
            step.clear();
            // A new function is Pending, and "Any invocations or other API actions that operate
            // on the function will fail" until it is Active (AWS, "Lambda function states"):
            // its invocation settings are set once it is.
            lambda
                .wait_until_function_active_v2()
                .function_name(&name)
                .wait(WAIT)
                .await
                .with_context(|| format!("Lambda function {name} did not become active"))?;
            apply_invocation(d, &Invocation::NEW).await?;
        }
        return Ok(outcome.created());
    };

    if !owned(d, &existing).await? {
        return Err(super::not_ours("Lambda function", &name, &d.cfg.app));
    }
    let have =
        Settings::from_function(&existing).context("GetFunction returned no configuration")?;
    let mut changes = have.differences(&want);
    let code_differs = existing
        .configuration()
        .and_then(|c| c.code_sha256())
        .is_none_or(|have| have != sha);
    if code_differs {
        changes.push("code: the embedded launcher changed".to_string());
    }
    let reserved = existing
        .concurrency()
        .and_then(|c| c.reserved_concurrent_executions());
    let invocation = Invocation {
        retries_ok: retries_ok?,
        reserved,
        reservable: reserved.is_some() || can_reserve(d).await,
    };
    let settle = invocation.differences();
    let settle_differs = !settle.is_empty();
    changes.extend(settle);
    let mut outcome = outcome;
    if !invocation.reservable {
        outcome = outcome.note(UNRESERVABLE);
    }

    if mode == Mode::Apply {
        if code_differs {
            lambda
                .update_function_code()
                .function_name(&name)
                .zip_file(Blob::new(package))
                .send()
                .await
                .with_context(|| format!("cannot update the code of {name}"))?;
            wait_updated(d).await?;
        }
        if have != want {
            lambda
                .update_function_configuration()
                .function_name(&name)
                .runtime(RUNTIME)
                .handler(&want.handler)
                .role(&want.role)
                .memory_size(want.memory_mb)
                .timeout(want.timeout_s)
                .environment(want.lambda_environment())
                .send()
                .await
                .with_context(|| format!("cannot update the configuration of {name}"))?;
            wait_updated(d).await?;
        }
        if settle_differs {
            apply_invocation(d, &invocation).await?;
        }
    }
    Ok(outcome.with_changes(changes))
}

async fn wait_updated(d: &Deployment) -> Result<()> {
    let name = &d.names.function;
    d.aws
        .lambda
        .wait_until_function_updated_v2()
        .function_name(name)
        .wait(WAIT)
        .await
        .with_context(|| format!("Lambda function {name} did not finish updating"))?;
    Ok(())
}

/// The function's async-invocation retry settings and reserved concurrency, as Lambda reports
/// them.
struct Invocation {
    retries_ok: bool,
    reserved: Option<i32>,
    /// Whether the account has concurrency to reserve; when it has none, no reservation is
    /// lew's desired state too (asking again on every run would change nothing).
    reservable: bool,
}

impl Invocation {
    /// What a new function lacks.
    const NEW: Invocation = Invocation {
        retries_ok: false,
        reserved: None,
        reservable: true,
    };

    fn concurrency_ok(&self) -> bool {
        self.reserved == Some(RESERVED_CONCURRENCY) || (self.reserved.is_none() && !self.reservable)
    }

    fn differences(&self) -> Vec<String> {
        let mut changes = Vec::new();
        if !self.retries_ok {
            changes.push(format!(
                "async retries: → {ASYNC_RETRIES}, max event age {ASYNC_MAX_AGE_S} s, failed \
                 events to the dead-letter queue"
            ));
        }
        if !self.concurrency_ok() {
            changes.push(format!(
                "reserved concurrency: {} → {RESERVED_CONCURRENCY}",
                self.reserved.map_or("none".to_string(), |r| r.to_string())
            ));
        }
        changes
    }
}

const UNRESERVABLE: &str = "the account has no concurrency to reserve, so bursts of uploads may \
                            briefly start more than worker.max_tasks tasks";

/// Whether the account can reserve concurrency for the launcher: Lambda keeps at least 100
/// executions unreserved, and a new account's limit is 10 in all. When the answer is unknown
/// (the call is refused), the reservation is attempted and its own error decides.
async fn can_reserve(d: &Deployment) -> bool {
    match d.aws.lambda.get_account_settings().send().await {
        Ok(out) => out
            .account_limit()
            .and_then(|l| l.unreserved_concurrent_executions())
            .is_none_or(|free| free - RESERVED_CONCURRENCY >= 100),
        Err(_) => true,
    }
}

/// Whether the async-invocation retry settings are lew's (the reserved concurrency comes with
/// GetFunction).
async fn read_retries(d: &Deployment) -> Result<bool> {
    let name = &d.names.function;
    let invoke = d
        .aws
        .lambda
        .get_function_event_invoke_config()
        .function_name(name)
        .send()
        .await;
    match invoke {
        Ok(out) => Ok(out.maximum_retry_attempts == Some(ASYNC_RETRIES)
            && out.maximum_event_age_in_seconds == Some(ASYNC_MAX_AGE_S)
            && out
                .destination_config()
                .and_then(|c| c.on_failure())
                .and_then(|f| f.destination())
                == Some(d.dlq_arn().as_str())),
        // None set yet, or no function yet (it is read while it may be about to be created).
        Err(SdkError::ServiceError(e))
            if matches!(
                e.err(),
                GetFunctionEventInvokeConfigError::ResourceNotFoundException(_)
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read the retry settings of {name}")),
    }
}

/// Sets whatever `have` lacks, both settings at the same time.
async fn apply_invocation(d: &Deployment, have: &Invocation) -> Result<()> {
    let lambda = &d.aws.lambda;
    let name = &d.names.function;
    let retries = async {
        if have.retries_ok {
            return Ok(());
        }
        // Lambda checks that the function's role may send to the destination; a policy put
        // moments ago may not be visible to it yet (IAM is eventually consistent).
        for attempt in 1..=IAM_ATTEMPTS {
            let put = lambda
                .put_function_event_invoke_config()
                .function_name(name)
                .maximum_retry_attempts(ASYNC_RETRIES)
                .maximum_event_age_in_seconds(ASYNC_MAX_AGE_S)
                .destination_config(
                    DestinationConfig::builder()
                        .on_failure(OnFailure::builder().destination(d.dlq_arn()).build())
                        .build(),
                )
                .send()
                .await;
            match put {
                Ok(_) => return Ok(()),
                Err(e) if destination_not_allowed_yet(&e) && attempt < IAM_ATTEMPTS => {
                    d.progress.line(format!(
                        "lambda function {name}: waiting for IAM propagation of the dead-letter \
                         queue permission ({attempt}/{IAM_ATTEMPTS})"
                    ));
                    d.sleep(Duration::from_secs(u64::from(attempt.min(5))))
                        .await;
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot set the retry settings of {name}"));
                }
            }
        }
        Ok(())
    };
    let concurrency = async {
        if have.concurrency_ok() {
            return Ok(());
        }
        match lambda
            .put_function_concurrency()
            .function_name(name)
            .reserved_concurrent_executions(RESERVED_CONCURRENCY)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // New accounts may have too little concurrency to reserve any. The launcher
            // then still works; concurrent launches can briefly exceed max_tasks.
            Err(SdkError::ServiceError(e))
                if matches!(
                    e.err(),
                    PutFunctionConcurrencyError::InvalidParameterValueException(_)
                ) =>
            {
                d.progress.warn(format!(
                    "cannot reserve concurrency for {name} ({}); bursts of uploads may \
                     briefly start more than worker.max_tasks tasks",
                    super::short_error(e.err())
                ));
                Ok(())
            }
            Err(e) => {
                Err(anyhow::Error::new(e).context(format!("cannot reserve concurrency for {name}")))
            }
        }
    };
    let (retries, concurrency) = futures::join!(retries, concurrency);
    retries.and(concurrency)
}

/// Whether PutFunctionEventInvokeConfig was refused because the role's permission to send to
/// the destination is not visible to Lambda yet. Typed variant, then the message.
fn destination_not_allowed_yet(err: &SdkError<PutFunctionEventInvokeConfigError>) -> bool {
    matches!(
        err.as_service_error(),
        Some(PutFunctionEventInvokeConfigError::InvalidParameterValueException(e))
            if e.message().is_some_and(|m| m.contains("permission"))
    )
}

/// Whether a CreateFunction error is IAM's eventual consistency: the role exists but Lambda
/// cannot assume it yet. Matched by typed variant; the message tells it from other invalid
/// parameters.
pub fn role_not_ready(err: &SdkError<CreateFunctionError>) -> bool {
    matches!(
        err.as_service_error(),
        Some(CreateFunctionError::InvalidParameterValueException(e))
            if e.message().is_some_and(|m| m.contains("cannot be assumed"))
    )
}

/// Sends CreateFunction, retrying with a bounded backoff while the launcher role is not yet
/// assumable; `note` shows each wait (on the step's spinner, or as a line).
pub async fn create_with_retry(
    d: &Deployment,
    req: CreateFunctionFluentBuilder,
    note: impl Fn(&str),
) -> Result<()> {
    let role = &d.names.launcher_role;
    let mut delay = Duration::from_secs(1);
    for attempt in 1..=IAM_ATTEMPTS {
        match req.clone().send().await {
            Ok(_) => return Ok(()),
            // The function exists: a concurrent setup made it, or this very request did and its
            // answer was lost before the SDK retried it. `ensure` converges it next time round.
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(CreateFunctionError::ResourceConflictException(_))
                ) =>
            {
                return Ok(());
            }
            Err(e) if role_not_ready(&e) && attempt < IAM_ATTEMPTS => {
                note(&format!(
                    "waiting for IAM propagation ({attempt}/{IAM_ATTEMPTS})"
                ));
                d.sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(8));
            }
            Err(e) if role_not_ready(&e) => {
                bail!(
                    "Lambda still cannot assume IAM role {role} after {IAM_ATTEMPTS} attempts; \
                     check that the role exists and trusts lambda.amazonaws.com, then run \
                     `lew setup` again"
                )
            }
            Err(e) => return Err(e).context("cannot create the launcher Lambda function"),
        }
    }
    unreachable!("the last attempt returns")
}

/// Deletes the function if it is this app's.
pub async fn delete(d: &Deployment) -> Result<Removed> {
    let name = d.names.function.clone();
    let Some(existing) = get(d).await? else {
        return Ok(Removed::new(KIND, name, Removal::AlreadyGone));
    };
    if !owned(d, &existing).await? {
        return Ok(Removed::new(KIND, name, Removal::NotOwned));
    }
    match d
        .aws
        .lambda
        .delete_function()
        .function_name(&name)
        .send()
        .await
    {
        Ok(_) => Ok(Removed::new(KIND, name, Removal::Deleted)),
        Err(SdkError::ServiceError(e))
            if matches!(e.err(), DeleteFunctionError::ResourceNotFoundException(_)) =>
        {
            Ok(Removed::new(KIND, name, Removal::AlreadyGone))
        }
        Err(e) => Err(e).with_context(|| format!("cannot delete Lambda function {name}")),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use aws_sdk_lambda::Client;
    use aws_sdk_lambda::operation::create_function::CreateFunctionOutput;
    use aws_sdk_lambda::types::error::InvalidParameterValueException;
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::error::one_line;
    use crate::resources::mock::Mocks;

    const NOT_ASSUMABLE: &str = "The role defined for the function cannot be assumed by Lambda.";

    fn invalid(message: &'static str) -> impl Fn() -> CreateFunctionError {
        move || {
            CreateFunctionError::InvalidParameterValueException(
                InvalidParameterValueException::builder()
                    .message(message)
                    .meta(crate::resources::mock::meta(
                        "InvalidParameterValueException",
                        message,
                    ))
                    .build(),
            )
        }
    }

    fn request(d: &Deployment) -> CreateFunctionFluentBuilder {
        d.aws
            .lambda
            .create_function()
            .function_name(&d.names.function)
            .role(d.role_arn(&d.names.launcher_role))
    }

    #[tokio::test]
    async fn a_role_not_yet_assumable_is_waited_for_then_the_function_is_created() {
        const N: usize = 4;
        let create = mock!(Client::create_function)
            .sequence()
            .error(invalid(NOT_ASSUMABLE))
            .times(N)
            .output(|| CreateFunctionOutput::builder().build())
            .build();
        let (d, sleep) = Mocks::new().lambda(&[&create]).deployment().await;
        let notes = RefCell::new(Vec::new());

        create_with_retry(&d, request(&d), |m| notes.borrow_mut().push(m.to_string()))
            .await
            .expect("created after the role propagated");

        assert_eq!(create.num_calls(), N + 1);
        let notes = notes.into_inner();
        assert_eq!(notes.len(), N, "{notes:?}");
        assert_eq!(
            notes[0],
            format!("waiting for IAM propagation (1/{IAM_ATTEMPTS})")
        );
        assert!(
            notes
                .iter()
                .all(|n| n.starts_with("waiting for IAM propagation")),
            "{notes:?}"
        );
        // A bounded exponential backoff between the attempts, on the SDK's (instant) clock.
        let secs: Vec<u64> = sleep.slept().iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8]);
    }

    #[tokio::test]
    async fn a_role_that_never_becomes_assumable_ends_in_an_error_naming_it() {
        let create = mock!(Client::create_function)
            .sequence()
            .error(invalid(NOT_ASSUMABLE))
            .times(IAM_ATTEMPTS as usize)
            .build();
        let (d, sleep) = Mocks::new().lambda(&[&create]).deployment().await;
        let notes = RefCell::new(0);

        let err = create_with_retry(&d, request(&d), |_| *notes.borrow_mut() += 1)
            .await
            .expect_err("must give up");

        assert_eq!(create.num_calls(), IAM_ATTEMPTS as usize);
        assert_eq!(notes.into_inner(), IAM_ATTEMPTS as usize - 1);
        let text = one_line(&err);
        assert!(
            text.contains("IAM role lew-unit-launcher") && text.contains("lew setup"),
            "{text}"
        );
        // No wait after the last attempt, and the whole wait is bounded.
        let waits = sleep.slept();
        assert_eq!(waits.len(), IAM_ATTEMPTS as usize - 1);
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(8)));
        assert!(waits.iter().sum::<Duration>() <= Duration::from_secs(120));
    }

    #[tokio::test]
    async fn setup_creates_the_function_once_the_role_propagated() {
        use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
        use aws_sdk_lambda::operation::put_function_concurrency::PutFunctionConcurrencyOutput;
        use aws_sdk_lambda::operation::put_function_event_invoke_config::PutFunctionEventInvokeConfigOutput;
        use aws_sdk_lambda::types::error::ResourceNotFoundException;
        use aws_sdk_lambda::types::{FunctionConfiguration, State};

        let missing = || {
            ResourceNotFoundException::builder()
                .meta(crate::resources::mock::meta(
                    "ResourceNotFoundException",
                    "Function not found",
                ))
                .build()
        };
        let get = mock!(Client::get_function)
            .then_error(move || GetFunctionError::ResourceNotFoundException(missing()));
        let create = mock!(Client::create_function)
            .match_requests(|r| {
                r.role() == Some("arn:aws:iam::123456789012:role/lew-unit-launcher")
                    && r.runtime() == Some(&RUNTIME)
                    && r.environment()
                        .and_then(|e| e.variables())
                        .is_some_and(|v| v["LEW_QUEUE_URL"] == "https://queue")
            })
            .sequence()
            .error(invalid(NOT_ASSUMABLE))
            .times(2)
            .output(|| CreateFunctionOutput::builder().build())
            .build();
        let in_state = |state: State| {
            move || {
                GetFunctionOutput::builder()
                    .configuration(
                        FunctionConfiguration::builder()
                            .state(state.clone())
                            .build(),
                    )
                    .build()
            }
        };
        // Pending at first: nothing may configure it until it is Active.
        let active = mock!(Client::get_function)
            .sequence()
            .output(in_state(State::Pending))
            .output(in_state(State::Active))
            .build();
        let no_invoke_config =
            mock!(Client::get_function_event_invoke_config).then_error(move || {
                GetFunctionEventInvokeConfigError::ResourceNotFoundException(missing())
            });
        let put_invoke_config = mock!(Client::put_function_event_invoke_config)
            .match_requests(|r| r.maximum_retry_attempts() == Some(ASYNC_RETRIES))
            .then_output(|| PutFunctionEventInvokeConfigOutput::builder().build());
        let reserve = mock!(Client::put_function_concurrency)
            .then_output(|| PutFunctionConcurrencyOutput::builder().build());
        let (d, sleep) = Mocks::new()
            .lambda(&[
                // Read at once: the function and its retry settings.
                &get,
                &no_invoke_config,
                &create,
                // Then waiting for it to be Active, and only then both settings (a call out of
                // this order matches no rule and fails the test).
                &active,
                &put_invoke_config,
                &reserve,
            ])
            .deployment()
            .await;
        let network = Network {
            vpc_id: "vpc-1".into(),
            subnets: vec!["subnet-1".into()],
            security_groups: vec!["sg-1".into()],
        };

        let outcome = ensure(&d, "https://queue", &network, Mode::Apply)
            .await
            .unwrap();

        assert_eq!(outcome.action, crate::resources::Action::Create);
        assert_eq!(create.num_calls(), 3);
        assert_eq!(reserve.num_calls(), 1);
        assert_eq!(active.num_calls(), 2);
        assert_eq!(
            sleep.slept()[..2],
            [Duration::from_secs(1), Duration::from_secs(2)]
        );
    }

    #[tokio::test]
    async fn an_account_without_concurrency_to_reserve_is_not_asked_again_and_again() {
        use aws_sdk_lambda::operation::get_account_settings::GetAccountSettingsOutput;
        use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
        use aws_sdk_lambda::operation::get_function_event_invoke_config::GetFunctionEventInvokeConfigOutput;
        use aws_sdk_lambda::types::{AccountLimit, FunctionConfiguration, Runtime};

        let network = Network {
            vpc_id: "vpc-1".into(),
            subnets: vec!["subnet-1".into()],
            security_groups: vec!["sg-1".into()],
        };
        // The function as lew left it, but without a reservation (the account refused it).
        let (probe, _) = Mocks::new().deployment().await;
        let want = desired(&probe, "https://queue", &network);
        let tags = crate::resources::mock::lew_tags();
        let sha = embedded::code_sha256(&embedded::launcher_zip());
        let get = mock!(Client::get_function).then_output(move || {
            let env = want.lambda_environment();
            tags.iter()
                .fold(GetFunctionOutput::builder(), |b, (k, v)| b.tags(k, v))
                .configuration(
                    FunctionConfiguration::builder()
                        .runtime(Runtime::from(want.runtime.as_str()))
                        .handler(&want.handler)
                        .role(&want.role)
                        .memory_size(want.memory_mb)
                        .timeout(want.timeout_s)
                        .environment(
                            aws_sdk_lambda::types::EnvironmentResponse::builder()
                                .set_variables(env.variables().cloned())
                                .build(),
                        )
                        .code_sha256(&sha)
                        .build(),
                )
                .build()
        });
        let retries = mock!(Client::get_function_event_invoke_config).then_output(|| {
            GetFunctionEventInvokeConfigOutput::builder()
                .maximum_retry_attempts(ASYNC_RETRIES)
                .maximum_event_age_in_seconds(ASYNC_MAX_AGE_S)
                .destination_config(
                    DestinationConfig::builder()
                        .on_failure(
                            OnFailure::builder()
                                .destination("arn:aws:sqs:eu-west-1:123456789012:lew-unit-jobs-dlq")
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
        let account = mock!(Client::get_account_settings).then_output(|| {
            GetAccountSettingsOutput::builder()
                .account_limit(
                    AccountLimit::builder()
                        .concurrent_executions(10)
                        .unreserved_concurrent_executions(10)
                        .build(),
                )
                .build()
        });
        // No rule for PutFunctionConcurrency: a call to it fails the test.
        let (d, _) = Mocks::new()
            .lambda(&[&get, &retries, &account])
            .deployment()
            .await;

        let outcome = ensure(&d, "https://queue", &network, Mode::Apply)
            .await
            .unwrap();

        assert_eq!(
            outcome.action,
            crate::resources::Action::Unchanged,
            "{outcome:?}"
        );
        assert!(
            outcome
                .note
                .as_deref()
                .is_some_and(|n| n.contains("no concurrency to reserve")),
            "{outcome:?}"
        );
        assert_eq!(account.num_calls(), 1);
    }

    #[tokio::test]
    async fn the_dead_letter_destination_waits_for_the_role_s_permission_to_propagate() {
        use aws_sdk_lambda::operation::put_function_event_invoke_config::PutFunctionEventInvokeConfigOutput;

        const NOT_YET: &str = "The function's execution role does not have permissions to call \
                               SendMessage on arn:aws:sqs:eu-west-1:123456789012:lew-unit-jobs-dlq";
        let put = mock!(Client::put_function_event_invoke_config)
            .match_requests(|r| {
                r.destination_config()
                    .and_then(|c| c.on_failure())
                    .and_then(|f| f.destination())
                    == Some("arn:aws:sqs:eu-west-1:123456789012:lew-unit-jobs-dlq")
            })
            .sequence()
            .error(|| {
                PutFunctionEventInvokeConfigError::InvalidParameterValueException(
                    InvalidParameterValueException::builder()
                        .message(NOT_YET)
                        .meta(crate::resources::mock::meta(
                            "InvalidParameterValueException",
                            NOT_YET,
                        ))
                        .build(),
                )
            })
            .times(2)
            .output(|| PutFunctionEventInvokeConfigOutput::builder().build())
            .build();
        let (d, sleep) = Mocks::new().lambda(&[&put]).deployment().await;
        let have = Invocation {
            retries_ok: false,
            reserved: Some(RESERVED_CONCURRENCY),
            reservable: true,
        };

        apply_invocation(&d, &have).await.unwrap();

        assert_eq!(put.num_calls(), 3);
        assert_eq!(
            sleep.slept(),
            [Duration::from_secs(1), Duration::from_secs(2)]
        );
    }

    /// The function as GetFunction shows it to a caller without lambda:ListTags: no tags.
    fn untagged(tags_error: bool) -> Rule {
        use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
        use aws_sdk_lambda::types::{FunctionConfiguration, TagsError};
        mock!(Client::get_function).then_output(move || {
            let out = GetFunctionOutput::builder()
                .configuration(FunctionConfiguration::builder().build());
            if tags_error {
                out.tags_error(
                    TagsError::builder()
                        .error_code("AccessDeniedException")
                        .message("not authorized to perform: lambda:ListTags")
                        .build()
                        .unwrap(),
                )
                .build()
            } else {
                out.build()
            }
        })
    }

    fn assert_names_list_tags(err: &anyhow::Error) {
        let text = one_line(err);
        assert!(
            text.contains("lambda:ListTags")
                && text
                    .contains("arn:aws:lambda:eu-west-1:123456789012:function:lew-unit-launcher")
                && !text.contains("not tagged"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn tags_withheld_for_want_of_list_tags_are_said_so_not_taken_for_another_owner() {
        // GetFunction says why it returned no tags.
        let (d, _) = Mocks::new().lambda(&[&untagged(true)]).deployment().await;
        assert_names_list_tags(&delete(&d).await.unwrap_err());

        // Or it says nothing, and ListTags itself is refused.
        let list = mock!(Client::list_tags).then_error(|| {
            ListTagsError::generic(crate::resources::mock::meta(
                "AccessDeniedException",
                "User is not authorized to perform: lambda:ListTags",
            ))
        });
        let (d, _) = Mocks::new()
            .lambda(&[&untagged(false), &list])
            .deployment()
            .await;
        assert_names_list_tags(&delete(&d).await.unwrap_err());
        assert_eq!(list.num_calls(), 1);
    }

    #[tokio::test]
    async fn the_tags_list_tags_returns_decide_ownership_when_get_function_has_none() {
        use aws_sdk_lambda::operation::delete_function::DeleteFunctionOutput;
        use aws_sdk_lambda::operation::list_tags::ListTagsOutput;

        let ours = mock!(Client::list_tags).then_output(|| {
            crate::resources::mock::lew_tags()
                .into_iter()
                .fold(ListTagsOutput::builder(), |b, (k, v)| b.tags(k, v))
                .build()
        });
        let deleted =
            mock!(Client::delete_function).then_output(|| DeleteFunctionOutput::builder().build());
        let (d, _) = Mocks::new()
            .lambda(&[&untagged(false), &ours, &deleted])
            .deployment()
            .await;
        assert_eq!(delete(&d).await.unwrap().result, Removal::Deleted);
        assert_eq!(deleted.num_calls(), 1);

        // No tags at all: someone else's.
        let none = mock!(Client::list_tags).then_output(|| ListTagsOutput::builder().build());
        let (d, _) = Mocks::new()
            .lambda(&[&untagged(false), &none])
            .deployment()
            .await;
        assert_eq!(delete(&d).await.unwrap().result, Removal::NotOwned);
    }

    #[tokio::test]
    async fn another_invalid_parameter_is_not_retried() {
        let create = mock!(Client::create_function).then_error(invalid(
            "Unzipped size must be smaller than 262144000 bytes",
        ));
        let (d, sleep) = Mocks::new().lambda(&[&create]).deployment().await;

        let err = create_with_retry(&d, request(&d), |n| panic!("unexpected wait: {n}"))
            .await
            .expect_err("a real error");

        assert_eq!(create.num_calls(), 1);
        assert!(sleep.slept().is_empty());
        let text = one_line(&err);
        assert!(
            text.contains("cannot create the launcher Lambda function")
                && text.contains("Unzipped size"),
            "{text}"
        );
    }
}
