//! The `lew` binary: parse the command line, run the command, print errors once, exit with the
//! code the README documents (0 ok, 1 failed, 2 usage or config, 3 render timed out, 4 status
//! found something missing or drifted, 130 interrupted).

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = match lew::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => err.exit(), // --help, --version: exit 0
        Err(err) => {
            let _ = err.print();
            if json_requested(std::env::args()) {
                let message = err.render().to_string();
                let err = anyhow::Error::new(lew::error::UsageError::new(message.trim_end()));
                lew::output::print_line(&lew::output::error_json(&err, 2));
            }
            return ExitCode::from(2);
        }
    };
    lew::output::set_colour(cli.global.color);
    let json = cli.global.output == lew::cli::OutputFormat::Json;
    let verbose = cli.global.verbose > 0;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot start the async runtime");
    match runtime.block_on(lew::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let code = lew::error::exit_code(&err);
            let text = lew::error::render(&err, verbose);
            let text = match text.strip_prefix("lew: error:") {
                Some(rest) => format!(
                    "lew: {}{rest}",
                    lew::output::paint("error:", lew::output::BAD, lew::output::colour_on_stderr())
                ),
                None => text,
            };
            eprintln!("{text}");
            if json {
                // stdout stays exactly one JSON document, even on failure.
                lew::output::print_line(&lew::output::error_json(&err, code));
            }
            ExitCode::from(code)
        }
    }
}

/// Whether the command line asks for `--output json`, for a usage error clap reports before
/// there is a parsed `--output` (stdout must still be one JSON document).
fn json_requested(args: impl Iterator<Item = String>) -> bool {
    let args: Vec<String> = args.collect();
    args.iter().any(|a| a == "--output=json")
        || args
            .windows(2)
            .any(|w| w[0] == "--output" && w[1] == "json")
}
