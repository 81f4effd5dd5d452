//! Which credentials lew signs with, and what it says when it cannot connect: checked on the
//! wire (moto's request recorder keeps every request's Authorization header).

use crate::support::{App, Moto};

const ENV_KEY: &str = "AKIAENVIRONMENT00000";
const PROFILE_KEY: &str = "AKIAPROFILEOTHER0000";

/// The access key ids that signed the recorded requests.
fn signing_keys(moto: &Moto) -> std::collections::BTreeSet<String> {
    moto.recorded_requests()
        .iter()
        .filter_map(|r| {
            let auth = r["headers"]["Authorization"].as_str()?;
            let credential = auth.split("Credential=").nth(1)?;
            Some(credential.split('/').next()?.to_string())
        })
        .collect()
}

/// A named profile signs, not the access key in the environment: `--profile` and `profile` in
/// lew.toml win as with the AWS CLI. Without one, the environment's key signs.
#[test]
fn a_named_profile_wins_over_access_keys_in_the_environment() {
    let moto = Moto::start();
    let app = App::on(&moto.url, "");
    let credentials = app.path().join("credentials");
    std::fs::write(
        &credentials,
        format!("[other]\naws_access_key_id = {PROFILE_KEY}\naws_secret_access_key = secret\n"),
    )
    .unwrap();
    let lew = || {
        app.lew()
            .env("AWS_ACCESS_KEY_ID", ENV_KEY)
            .env("AWS_SECRET_ACCESS_KEY", "environment-secret")
            .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
            .env("AWS_CONFIG_FILE", app.path().join("no-config"))
            .env_remove("AWS_PROFILE")
    };

    moto.record();
    let run = lew().args(["--profile", "other", "status"]).run();
    assert!(run.code == 0 || run.code == 4, "{run:?}");
    assert!(
        run.stderr
            .contains("AWS_ACCESS_KEY_ID in the environment is not used"),
        "{}",
        run.stderr
    );
    assert_eq!(signing_keys(&moto), [PROFILE_KEY.to_string()].into());

    app.write_config("profile = \"other\"\n");
    moto.record();
    lew().arg("status").run();
    assert_eq!(signing_keys(&moto), [PROFILE_KEY.to_string()].into());

    // Without a named profile the provider chain is the SDK's: the environment first.
    app.write_config("");
    moto.record();
    lew().arg("status").run();
    assert_eq!(signing_keys(&moto), [ENV_KEY.to_string()].into());
}
