//! Results on stdout: every command returns a report that is both `Display` (text) and
//! `Serialize` (`--output json`, exactly one document).

use std::fmt::Display;

use anyhow::Result;
use serde::Serialize;

use crate::cli::OutputFormat;

/// A command's result. A report can carry a failure (for example teardown's leak check) that
/// should still print in full before lew exits non-zero.
pub trait Report: Display + Serialize {
    /// The exit code: 0 unless the report describes a failure.
    fn exit_code(&self) -> u8 {
        0
    }
}

/// Prints the report and returns its exit code.
pub fn emit<R: Report>(report: &R, format: OutputFormat) -> Result<u8> {
    match format {
        OutputFormat::Text => {
            let text = report.to_string();
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(report)?),
    }
    Ok(report.exit_code())
}

/// The JSON document printed instead of a report when a command fails outright.
pub fn error_json(err: &anyhow::Error, code: u8) -> String {
    let messages = crate::error::messages(err);
    serde_json::json!({
        "error": messages[0],
        "causes": &messages[1..],
        "exit_code": code,
    })
    .to_string()
}
