//! What a user at a terminal sees (run on a pseudo-terminal through util-linux `script`): the
//! teardown prompt, the live progress of setup, colour.

use crate::support::App;

#[test]
fn teardown_lists_what_goes_and_what_stays_and_no_is_no_failure() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let p = app.prefix();

    let run = app.lew().arg("teardown").terminal("n\n");
    let screen = &run.stdout;
    assert_eq!(run.code, 0, "answering no is no failure:\n{screen}");
    let (goes, keeps) = screen
        .split_once("It keeps:")
        .unwrap_or_else(|| panic!("no \"It keeps:\" in:\n{screen}"));
    for name in [
        format!("lambda function        {p}-launcher"),
        format!("sqs queue              {p}-jobs"),
        format!("sqs dead-letter queue  {p}-jobs-dlq"),
        format!("ecs cluster            {p}"),
        format!("ecr repository         {p}-worker"),
        format!("iam role               {p}-task"),
        format!("log group              /lew/{}/worker", app.name),
    ] {
        assert!(goes.contains(&name), "{name:?} not listed to go:\n{screen}");
    }
    assert!(
        keeps.contains(&format!("s3 bucket              {}", app.bucket())),
        "the bucket is not listed as kept:\n{screen}"
    );
    assert!(screen.contains("nothing was deleted"), "{screen}");
    // And indeed nothing was.
    app.lew().arg("status").ok();

    // With --delete-data the bucket goes too; Enter alone is "no".
    let run = app.lew().args(["teardown", "--delete-data"]).terminal("\n");
    let (goes, _) = run.stdout.split_once("It keeps:").unwrap();
    assert!(goes.contains(&app.bucket()), "{}", run.stdout);
    assert_eq!(run.code, 0, "{}", run.stdout);
    app.lew().arg("status").ok();

    let run = app.lew().arg("teardown").terminal("y\n");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&format!("leak check: nothing of app {} is left", app.name)),
        "{}",
        run.stdout
    );
}

/// On a terminal, setup's live progress is replaced by the results: each resource is one line
/// on the screen (its progress line is not left behind above its result).
#[test]
fn setup_on_a_terminal_shows_each_resource_once() {
    let app = App::new("");
    let run = app.lew().arg("setup").screen();
    assert_eq!(run.code, 0, "{}", run.stdout);
    let p = app.prefix();
    for name in [
        format!("sqs queue {p}-jobs"),
        format!("iam role {p}-task"),
        format!("lambda function {p}-launcher"),
        format!("s3 bucket {}", app.bucket()),
    ] {
        let lines: Vec<&str> = run
            .stdout
            .lines()
            .filter(|l| {
                l.ends_with(&name)
                    || l.contains(&format!("{name} "))
                    || l.contains(&format!("{name}:"))
            })
            .collect();
        assert_eq!(lines.len(), 1, "{name}: {lines:?}\n{}", run.stdout);
        assert!(lines[0].starts_with("created "), "{lines:?}");
    }
    assert!(run.stdout.contains("resources created"), "{}", run.stdout);
}

/// Without a terminal every progress line stays, one per resource, with the time it was
/// printed; results are on stdout, one line each.
#[test]
fn piped_progress_lines_carry_the_time() {
    let app = App::new("");
    let run = app.lew().arg("setup").ok();
    let p = app.prefix();
    let progress: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.ends_with(&format!("sqs queue {p}-jobs: created")))
        .collect();
    assert_eq!(progress.len(), 1, "{}", run.stderr);
    for line in run.stderr.lines() {
        let (time, _) = line.split_once(' ').unwrap_or_default();
        let digits: String = time.chars().filter(char::is_ascii_digit).collect();
        assert!(
            time.len() == 9 && time.ends_with('Z') && digits.len() == 6,
            "no HH:MM:SSZ time at the start of {line:?}"
        );
    }
}

/// While lew connects there is a spinner, not a blank screen, and an endpoint that cannot be
/// reached ends it with one line.
#[test]
fn connecting_shows_a_spinner() {
    let app = App::on("http://127.0.0.1:9", "");
    let run = app.lew().arg("status").terminal("");
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .split(['\r', '\n'])
            .any(|frame| frame.contains("connecting to AWS")),
        "{:?}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("cannot reach AWS at http://127.0.0.1:9"),
        "{:?}",
        run.stdout
    );
}

/// Spinners show how long their step has run: through a proxy adding 300 ms per call, setup's
/// spinner reaches a second.
#[test]
fn a_spinner_shows_the_time_its_step_has_run() {
    let app = App::new("");
    let proxy = crate::support::proxy::Proxy::start(&app.endpoint, 300);
    let run = app
        .lew()
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .arg("setup")
        .terminal("");
    assert_eq!(run.code, 0, "{}", run.stdout);
    // Frames are redrawn after a carriage return: one frame is one spinner line.
    let frames: Vec<&str> = run
        .stdout
        .split(['\r', '\n'])
        .filter(|f| f.contains("setting up"))
        .collect();
    assert!(
        frames
            .iter()
            .any(|f| { f.trim_end().ends_with(" 1s") || f.trim_end().ends_with(" 2s") }),
        "no frame of the spinner shows its time:\n{frames:#?}"
    );
}

/// Results are coloured on a terminal (`created` green, `MISSING` yellow), never when piped,
/// and `NO_COLOR` / `--color` decide as with cargo and ripgrep.
#[test]
fn results_use_colour_on_a_terminal_only_unless_told() {
    use lew::output::{GOOD, WARNING, paint};
    let created = paint("created", GOOD, true);
    let missing = paint("MISSING", WARNING, true);

    let app = App::new("");
    let run = app.lew().arg("status").terminal("");
    assert_eq!(run.code, 4, "{}", run.stdout);
    assert!(run.stdout.contains(&missing), "{:?}", run.stdout);

    let run = app.lew().arg("setup").terminal("");
    assert!(run.stdout.contains(&created), "{:?}", run.stdout);

    // Piped: plain text, unless --color always.
    let run = app.lew().arg("status").ok();
    assert!(!run.stdout.contains('\u{1b}'), "{:?}", run.stdout);
    let run = app.lew().args(["--color", "always", "status"]).ok();
    assert!(
        run.stdout.contains(&paint("present", GOOD, true)),
        "{:?}",
        run.stdout
    );

    // On a terminal: NO_COLOR and --color never turn it off.
    let colour = |r: &crate::support::Run| r.stdout.contains(&paint("present", GOOD, true));
    assert!(colour(&app.lew().arg("status").terminal("")));
    assert!(!colour(
        &app.lew().env("NO_COLOR", "1").arg("status").terminal("")
    ));
    assert!(!colour(
        &app.lew().args(["--color", "never", "status"]).terminal("")
    ));
}
