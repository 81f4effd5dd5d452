//! The command line and the configuration: what users see before any AWS call is made.

use crate::support::{App, Lew};

#[test]
fn help_lists_every_command_of_the_brief() {
    let run = Lew::new().arg("--help").ok();
    for cmd in [
        "init",
        "setup",
        "deploy-lambda",
        "push-image",
        "render",
        "status",
        "logs",
        "teardown",
    ] {
        assert!(
            run.stdout.lines().any(|l| l.trim_start().starts_with(cmd)),
            "{cmd} missing from --help:\n{}",
            run.stdout
        );
    }
    for flag in [
        "--config",
        "--profile",
        "--region",
        "--endpoint-url",
        "--output",
        "--verbose",
        "--quiet",
    ] {
        assert!(run.stdout.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn version_prints_the_crate_version() {
    let run = Lew::new().arg("--version").ok();
    assert_eq!(
        run.stdout.trim(),
        format!("lew {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let run = Lew::new().arg("deploy").code(2);
    assert!(
        run.stderr.contains("unrecognized subcommand"),
        "{}",
        run.stderr
    );
}

#[test]
fn init_writes_the_commented_defaults_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let run = Lew::new().dir(dir.path()).arg("init").ok();
    assert!(run.stdout.contains("lew.toml"));
    let written = std::fs::read_to_string(dir.path().join("lew.toml")).unwrap();
    assert_eq!(written, lew::config::TEMPLATE);
    assert_eq!(
        lew::config::Config::parse(&written).unwrap(),
        lew::config::Config::default()
    );

    std::fs::write(dir.path().join("lew.toml"), "app = \"mine\"\n").unwrap();
    let run = Lew::new().dir(dir.path()).arg("init").code(2);
    assert!(run.stderr.contains("already exists") && run.stderr.contains("--force"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("lew.toml")).unwrap(),
        "app = \"mine\"\n"
    );

    Lew::new().dir(dir.path()).args(["init", "--force"]).ok();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("lew.toml")).unwrap(),
        written
    );
}

#[test]
fn init_honours_config_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.toml");
    Lew::new()
        .dir(dir.path())
        .args(["--config", path.to_str().unwrap(), "init"])
        .ok();
    assert!(path.exists());
    assert!(!dir.path().join("lew.toml").exists());
}

/// Runs `lew setup` with a config and an endpoint where nothing listens: if lew called AWS it
/// would fail with exit 1, so exit 2 shows validation came first.
fn rejected(extra: &str, expect: &[&str]) {
    let app = App::on("http://127.0.0.1:9", extra);
    let run = app.lew().arg("setup").code(2);
    for e in expect {
        assert!(
            run.stderr.contains(e),
            "config {extra:?}: expected {e:?} in:\n{}",
            run.stderr
        );
    }
    assert!(
        run.stdout.is_empty(),
        "stdout must stay empty: {}",
        run.stdout
    );
}

#[test]
fn every_validation_rule_is_a_usage_error_naming_the_key() {
    rejected(
        "[queue]\nvisibility_timeout_s = 50000\n",
        &["queue.visibility_timeout_s = 50000", "43200"],
    );
    rejected(
        "[queue]\nvisibility_timeout_s = 5\n",
        &["queue.visibility_timeout_s = 5"],
    );
    rejected("[queue]\nmax_receives = 0\n", &["queue.max_receives = 0"]);
    rejected(
        "[launcher]\nmemory_mb = 64\n",
        &["launcher.memory_mb = 64", "128"],
    );
    rejected(
        "[launcher]\ntimeout_s = 901\n",
        &["launcher.timeout_s = 901", "900"],
    );
    rejected("[worker]\ncpu = 300\n", &["worker.cpu = 300"]);
    rejected(
        "[worker]\ncpu = 1024\nmemory_mb = 1024\n",
        &["worker.memory_mb = 1024", "2048-8192"],
    );
    rejected(
        "[worker]\ncpu = 256\nmemory_mb = 4096\n",
        &["worker.memory_mb = 4096", "512, 1024 or 2048"],
    );
    rejected("[worker]\nmax_tasks = 0\n", &["worker.max_tasks = 0"]);
    rejected(
        "[worker]\nrender_timeout_s = 0\n",
        &["worker.render_timeout_s = 0"],
    );
    rejected(
        "[worker]\ncontainer_cli = \"rkt\"\n",
        &["worker.container_cli = \"rkt\"", "podman"],
    );
    rejected(
        "[bucket]\ninput_prefix = \"scenes\"\n",
        &["bucket.input_prefix = \"scenes\"", "ends with '/'"],
    );
    rejected(
        "[bucket]\ninput_prefix = \"jobs/\"\noutput_prefix = \"jobs/out/\"\n",
        &["bucket.output_prefix", "overlaps"],
    );
    rejected(
        "[bucket]\nname = \"Bad_Bucket\"\n",
        &["bucket.name = \"Bad_Bucket\""],
    );
    rejected(
        "[network]\nsubnets = [\"subnet-xyz\"]\n",
        &["network.subnets[0] = \"subnet-xyz\""],
    );
    rejected(
        "[network]\nsecurity_groups = [\"default\"]\n",
        &["network.security_groups[0] = \"default\""],
    );
    rejected(
        "[logs]\nretention_days = 13\n",
        &["logs.retention_days = 13", "CloudWatch Logs accepts only"],
    );
    rejected(
        "[worker]\ncpu = 1000\nmemory_mb = 100\n",
        &[
            "worker.cpu = 1000: is not a Fargate size",
            "worker.memory_mb = 100",
        ],
    );
    rejected(
        "[worker]\nmax_task = 3\n",
        &["unknown field `max_task`", "did you mean `max_tasks`?"],
    );
    rejected(
        "[worker]\nmax_tasks = \"four\"\n",
        &["max_tasks", "invalid type"],
    );
    rejected("[workers]\n", &["unknown field `workers`"]);
}

#[test]
fn app_and_region_names_are_checked() {
    for (toml, key) in [
        ("app = \"Has_Upper\"\n", "app = \"Has_Upper\""),
        (
            "app = \"waytoolongforanappname\"\n",
            "app = \"waytoolongforanappname\"",
        ),
        ("app = \"-dash\"\n", "app = \"-dash\""),
        ("region = \"mars-1\"\n", "region = \"mars-1\""),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lew.toml"), toml).unwrap();
        let run = Lew::new()
            .dir(dir.path())
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .arg("setup")
            .code(2);
        assert!(run.stderr.contains(key), "{key}: {}", run.stderr);
    }
}

#[test]
fn several_problems_are_reported_together() {
    let app = App::on(
        "http://127.0.0.1:9",
        "[worker]\nmax_tasks = 0\n[logs]\nretention_days = 2\n",
    );
    let run = app.lew().arg("setup").code(2);
    assert!(run.stderr.contains("2 problems"), "{}", run.stderr);
}

#[test]
fn a_config_file_named_explicitly_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let run = Lew::new()
        .dir(dir.path())
        .args(["--config", "nope.toml", "status"])
        .code(2);
    assert!(
        run.stderr.contains("nope.toml") && run.stderr.contains("lew init"),
        "{}",
        run.stderr
    );
    let run = Lew::new()
        .dir(dir.path())
        .env("LEW_CONFIG", "also-nope.toml")
        .arg("status")
        .code(2);
    assert!(run.stderr.contains("also-nope.toml"), "{}", run.stderr);
}

#[test]
fn a_bad_region_flag_is_a_usage_error() {
    let app = App::on("http://127.0.0.1:9", "");
    let run = app.lew().args(["--region", "nowhere", "status"]).code(2);
    assert!(
        run.stderr.contains("--region \"nowhere\""),
        "{}",
        run.stderr
    );
}

#[test]
fn missing_region_is_a_usage_error_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let run = Lew::new()
        .dir(dir.path())
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env("AWS_CONFIG_FILE", dir.path().join("none"))
        .arg("status")
        .code(2);
    assert!(run.stderr.contains("no AWS region"), "{}", run.stderr);
    assert!(run.stderr.contains("--region"), "{}", run.stderr);
}

#[test]
fn missing_credentials_are_a_usage_error_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let run = Lew::new()
        .dir(dir.path())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", dir.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "eu-west-1")
        .arg("status")
        .code(2);
    assert!(run.stderr.contains("no AWS credentials"), "{}", run.stderr);
}

#[test]
fn a_profile_that_gives_no_region_or_no_credentials_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(&config, "[profile dev]\nregion = eu-west-1\n").unwrap();
    let lew = |profile: &str| {
        Lew::new()
            .dir(dir.path())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("AWS_PROFILE")
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args(["--profile", profile, "status"])
    };
    // Misspelt: no region comes with it.
    let run = lew("dve").code(2);
    assert!(
        run.stderr.contains("the profile \"dve\" names none"),
        "{}",
        run.stderr
    );
    // Real, but without keys: the profile is named, with the fix.
    let run = lew("dev").code(2);
    assert!(
        run.stderr.contains("for the profile \"dev\"")
            && run.stderr.contains("aws sso login --profile dev"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_endpoint_that_is_no_url_is_a_usage_error() {
    let run = Lew::new()
        .args(["--endpoint-url", "localhost:5000", "status"])
        .code(2);
    assert!(run.stderr.contains("http://"), "{}", run.stderr);
}

#[test]
fn json_errors_are_one_document_on_stdout() {
    let app = App::on("http://127.0.0.1:9", "[worker]\nmax_tasks = 0\n");
    let run = app.lew().args(["--output", "json", "setup"]).code(2);
    let doc = run.json();
    assert_eq!(doc["exit_code"], 2);
    assert!(doc["error"].as_str().unwrap().contains("worker.max_tasks"));
}

#[test]
fn a_command_line_error_with_json_output_is_one_document_too() {
    let run = Lew::new().args(["--output", "json", "render"]).code(2);
    let doc = run.json();
    assert_eq!(doc["exit_code"], 2);
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("required arguments"),
        "{doc}"
    );
    assert!(run.stderr.contains("Usage: lew render"), "{}", run.stderr);
}

#[test]
fn a_job_filter_that_is_no_job_id_is_a_usage_error() {
    let app = App::on("http://127.0.0.1:9", "");
    let run = app
        .lew()
        .args(["logs", "worker", "--job", "x\" OR \"y"])
        .code(2);
    assert!(run.stderr.contains("is not a job id"), "{}", run.stderr);
}
