//! Results on stdout: every command returns a report that is both `Display` (text) and
//! `Serialize` (`--output json`, exactly one document).
//!
//! Colour: a text report's first word on each line (the word column every report shares) and
//! its warnings are coloured when stdout takes colour: `--color always|never`, else anstream's
//! rules as cargo and ripgrep follow them (NO_COLOR, CLICOLOR_FORCE, a terminal). Reports
//! themselves stay plain text; colour is added as they are printed.

use std::fmt::Display;

use anyhow::Result;
use serde::Serialize;

use anstream::ColorChoice;
use anstyle::{AnsiColor, Style};

use crate::cli::{ColorWhen, OutputFormat};

/// Success: created, present, done.
pub const GOOD: Style = AnsiColor::Green.on_default();
/// Needs attention: MISSING, DRIFTED, warnings.
pub const WARNING: Style = AnsiColor::Yellow.on_default().bold();
/// Failed.
pub const BAD: Style = AnsiColor::Red.on_default().bold();

/// Applies `--color` to both streams (before anything is printed).
pub fn set_colour(when: ColorWhen) {
    match when {
        ColorWhen::Auto => ColorChoice::Auto,
        ColorWhen::Always => ColorChoice::Always,
        ColorWhen::Never => ColorChoice::Never,
    }
    .write_global();
}

/// Whether what lew writes to stderr gets colour.
pub fn colour_on_stderr() -> bool {
    anstream::AutoStream::choice(&std::io::stderr()) != ColorChoice::Never
}

/// `text` in `style` when `on`.
pub fn paint(text: &str, style: Style, on: bool) -> String {
    if on {
        format!("{style}{text}{style:#}")
    } else {
        text.to_string()
    }
}

/// The colour of a report's first word: what happened or the state found.
fn word_style(word: &str) -> Option<Style> {
    match word {
        "created" | "updated" | "present" | "done" | "deleted" | "create" => Some(GOOD),
        "update" | "MISSING" | "DRIFTED" | "pending" | "warning:" => Some(WARNING),
        "FAILED" | "ERROR" | "failed" | "invalid" => Some(BAD),
        _ => None,
    }
}

/// A text report with its first words and warnings coloured (stripped again by
/// [`print_line`]'s stream when stdout takes no colour).
pub fn colour_words(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let word = line.split(' ').next().unwrap_or_default();
        match word_style(word) {
            Some(style) => {
                out.push_str(&paint(word, style, true));
                out.push_str(&line[word.len()..]);
            }
            None => out.push_str(line),
        }
    }
    out
}

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
                print_line(&colour_words(text.trim_end()));
            }
        }
        OutputFormat::Json => print_line(&serde_json::to_string_pretty(report)?),
    }
    Ok(report.exit_code())
}

/// Writes a line to stdout, without its colour when stdout takes none. A reader that went away
/// (`lew status | head -1`) is no error worth a panic, which `println!` would make of it: the
/// rest of the line is dropped.
pub fn print_line(text: &str) {
    use std::io::Write as _;
    let mut out = anstream::stdout().lock();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_words_are_coloured_and_the_rest_is_not() {
        let text = "created      s3 bucket b\nMISSING      sqs queue q  [note]\nunchanged    x\n\
                    warning: subnets have no route\nFAILED       iam role r: denied";
        let painted = colour_words(text);
        assert_eq!(
            painted,
            format!(
                "{}      s3 bucket b\n{}      sqs queue q  [note]\nunchanged    x\n\
                 {} subnets have no route\n{}       iam role r: denied",
                paint("created", GOOD, true),
                paint("MISSING", WARNING, true),
                paint("warning:", WARNING, true),
                paint("FAILED", BAD, true),
            )
        );
        // Stripping the colour gives the report back unchanged.
        let mut plain = Vec::new();
        {
            use std::io::Write as _;
            let mut s = anstream::StripStream::new(&mut plain);
            s.write_all(painted.as_bytes()).unwrap();
        }
        assert_eq!(String::from_utf8(plain).unwrap(), text);
    }
}
