//! Errors that decide lew's exit code, and the one place that prints an error chain.
//!
//! Exit codes: 0 success, 1 the operation failed, 2 usage or configuration error (nothing was
//! changed), 3 a render timed out, 4 `status` found a resource missing or drifted, 130
//! interrupted while waiting.

use std::fmt::Write as _;

/// A usage or configuration problem: exit code 2. The message names the problem and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

impl UsageError {
    pub fn new(message: impl Into<String>) -> Self {
        UsageError(message.into())
    }
}

/// `lew status` found something missing or drifted: a distinct code, so a CI step can use
/// status as a check, as `terraform plan -detailed-exitcode` is used (its 2 is lew's usage
/// error, so lew's is the next free number).
pub const NOT_IN_PLACE: u8 = 4;

/// An error whose message says all a user needs in one line: its causes (the SDK's chain) are
/// printed only with -v, and are kept in `--output json`'s `causes`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Brief(pub String);

/// A wait that ran out of time: exit code 3.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TimedOut(pub String);

/// Ctrl-C while lew waited for work that goes on without it: exit code 130, as for any
/// interrupted command.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Interrupted(pub String);

/// The exit code for an error: the first cause in the chain that decides one wins.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    // A context added with `.context(UsageError::new(..))` is found by downcasting, not in
    // the chain of sources.
    if err.downcast_ref::<UsageError>().is_some() {
        return 2;
    }
    for cause in err.chain() {
        if cause.is::<UsageError>() {
            return 2;
        }
        if cause.is::<TimedOut>() {
            return 3;
        }
        if cause.is::<Interrupted>() {
            return 130;
        }
    }
    1
}

/// The messages of an error chain worth showing: the SDK's bare "service error" and
/// repeated text (a cause whose message is already part of the previous one) are dropped.
pub fn messages(err: &anyhow::Error) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || text == "service error" || text == "unhandled error" {
            continue;
        }
        if out.iter().any(|seen| seen.contains(text)) {
            continue;
        }
        out.push(text.to_string());
    }
    if out.is_empty() {
        out.push(format!("{err:?}"));
    }
    out
}

/// The whole chain on one line, `cause: cause: ...`, for a report entry or a warning.
pub fn one_line(err: &anyhow::Error) -> String {
    messages(err).join(": ")
}

/// The error as lew prints it on stderr: `lew: error: ...` and one `caused by:` line per cause
/// (for a [`Brief`] error only when `verbose`).
pub fn render(err: &anyhow::Error, verbose: bool) -> String {
    let msgs = messages(err);
    let mut s = format!("lew: error: {}", msgs[0]);
    if !verbose && err.downcast_ref::<Brief>().is_some() {
        return s;
    }
    for m in &msgs[1..] {
        let _ = write!(s, "\n  caused by: {m}");
    }
    s
}
