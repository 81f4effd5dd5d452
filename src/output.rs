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
                print_line(text.trim_end());
            }
        }
        OutputFormat::Json => print_line(&serde_json::to_string_pretty(report)?),
    }
    Ok(report.exit_code())
}

/// Writes a line to stdout. A reader that went away (`lew status | head -1`) is no error worth
/// a panic, which `println!` would make of it: the rest of the line is dropped.
pub fn print_line(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("lew: cannot write the result to stdout: {e}");
    }
}

/// The column of the first word of a report line (`created`, `DRIFTED`, `already gone`, ...),
/// the same in every report.
pub const WORD_WIDTH: usize = 12;

/// One resource's line in a text report: `word label  [note]`, labels aligned to `width`, no
/// trailing spaces; then one indented line per detail.
pub fn resource_line(
    f: &mut std::fmt::Formatter<'_>,
    word: &str,
    label: &str,
    width: usize,
    note: Option<&str>,
    details: &[String],
) -> std::fmt::Result {
    match note {
        Some(note) => writeln!(f, "{word:<WORD_WIDTH$} {label:<width$}  [{note}]")?,
        None => writeln!(f, "{word:<WORD_WIDTH$} {label}")?,
    }
    for d in details {
        writeln!(f, "{:<WORD_WIDTH$}   - {d}", "")?;
    }
    Ok(())
}

/// The width that aligns `resource name` labels.
pub fn label_width<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>) -> usize {
    labels
        .map(|(r, n)| r.len() + 1 + n.len())
        .max()
        .unwrap_or(0)
}

/// A failed resource's line in a text report: `WORD resource: error`.
pub fn failure_line(
    f: &mut std::fmt::Formatter<'_>,
    word: &str,
    failure: &crate::resources::Failure,
) -> std::fmt::Result {
    writeln!(
        f,
        "{word:<WORD_WIDTH$} {}: {}",
        failure.resource, failure.error
    )
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
