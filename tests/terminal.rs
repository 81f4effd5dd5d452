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
