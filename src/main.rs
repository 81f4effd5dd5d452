//! The `lew` binary: parse the command line, run the command, print errors once, exit with the
//! code the brief promises (0 ok, 1 failed, 2 usage or config, 3 render timed out).

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = lew::cli::Cli::parse();
    let json = cli.global.output == lew::cli::OutputFormat::Json;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot start the async runtime");
    match runtime.block_on(lew::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let code = lew::error::exit_code(&err);
            eprintln!("{}", lew::error::render(&err));
            if json {
                // stdout stays exactly one JSON document, even on failure.
                println!("{}", lew::output::error_json(&err, code));
            }
            ExitCode::from(code)
        }
    }
}
