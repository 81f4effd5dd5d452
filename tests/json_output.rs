//! `--output json`: stdout is exactly one JSON document for every AWS command, also with
//! verbose progress (which goes to stderr) and when the command fails.

use crate::support::App;

/// Runs `lew -v --output json ARGS` (verbose, so progress is printed, to stderr) and returns
/// its one document.
fn json(app: &App, args: &[&str], code: i32) -> serde_json::Value {
    app.lew()
        .args(["-v", "--output", "json"])
        .args(args)
        .code(code)
        .json()
}

#[test]
fn every_aws_command_prints_one_json_document() {
    let app = App::new("");
    let setup = json(&app, &["setup"], 0);
    assert!(setup["resources"].as_array().unwrap().len() > 10, "{setup}");
    let plan = json(&app, &["setup", "--dry-run"], 0);
    assert_eq!(plan["dry_run"], true);
    let status = json(&app, &["status"], 0);
    assert_eq!(status["app"], app.name.as_str());
    let deploy = json(&app, &["deploy-lambda"], 0);
    assert_eq!(deploy["function"]["action"], "unchanged");
    let teardown = json(&app, &["teardown", "--yes"], 0);
    assert_eq!(teardown["leftovers"], serde_json::json!([]));
    // Without a queue, deploy-lambda fails: still one document, with the error.
    let failed = json(&app, &["deploy-lambda"], 1);
    assert_eq!(failed["exit_code"], 1);
    assert!(
        failed["error"].as_str().unwrap().contains("lew setup"),
        "{failed}"
    );
}

#[test]
fn a_setup_with_failed_resources_is_one_document_listing_them() {
    let app = App::new("");
    // A same-named repository that is not lew's: setup converges everything else, then fails.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        app.aws()
            .await
            .ecr
            .create_repository()
            .repository_name(format!("{}-worker", app.prefix()))
            .send()
            .await
            .unwrap();
    });
    let report = json(&app, &["setup"], 1);
    let failures = report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{report}");
    assert!(
        failures[0]["error"]
            .as_str()
            .unwrap()
            .contains("not tagged lew:app"),
        "{report}"
    );
}
