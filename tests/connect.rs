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

/// A local TCP server that answers every connection with `reply` (or closes it at once when
/// `reply` is empty), counting connections; it runs until the test process ends.
fn fake_server(reply: &'static [u8]) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if !reply.is_empty() {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(reply);
            }
        }
    });
    (addr, count)
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An endpoint that cannot be reached is reported in one line naming it and where it came
/// from; the SDK's cause chain only with -v.
#[test]
fn an_unreachable_endpoint_is_named_with_its_source_in_one_line() {
    let app = App::on("http://127.0.0.1:9", "");
    let url = format!("http://127.0.0.1:{}", closed_port());

    let run = app.lew().args(["--endpoint-url", &url, "status"]).code(1);
    assert_eq!(
        run.stderr.trim_end().lines().last().unwrap(),
        format!(
            "lew: error: cannot reach AWS at {url} (from --endpoint-url): Connection refused \
             (os error 111); is the service (an emulator?) running there, and is the URL right?"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("caused by"), "{}", run.stderr);

    let run = app
        .lew()
        .env("AWS_ENDPOINT_URL", &url)
        .arg("status")
        .code(1);
    assert!(
        run.stderr.contains(&format!(
            "cannot reach AWS at {url} (from AWS_ENDPOINT_URL)"
        )),
        "{}",
        run.stderr
    );

    let run = app
        .lew()
        .args(["-v", "--endpoint-url", &url, "status"])
        .code(1);
    assert!(
        run.stderr.contains("caused by: tcp connect error"),
        "-v shows the chain: {}",
        run.stderr
    );

    // JSON keeps the chain for programs.
    let run = app
        .lew()
        .args(["--output", "json", "--endpoint-url", &url, "status"])
        .code(1);
    let doc = run.json();
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot reach AWS at"),
        "{doc}"
    );
    assert!(!doc["causes"].as_array().unwrap().is_empty(), "{doc}");
}

/// A connection that cannot be made is tried twice, not the ten times throttling gets: a TLS
/// handshake that fails (the server closes at once) is a connect error the server can count.
/// STS has a server of its own: the other services' look-ups, made meanwhile, go elsewhere.
#[test]
fn a_connection_that_cannot_be_made_is_tried_twice() {
    let (addr, connections) = fake_server(b"");
    let (others, _) = fake_server(b"");
    let app = App::on(&format!("https://{others}"), "");
    let run = app
        .lew()
        .env("AWS_ENDPOINT_URL_STS", format!("https://{addr}"))
        .arg("status")
        .code(1);
    assert!(
        run.stderr.contains(&format!(
            "cannot reach AWS at https://{addr} (from AWS_ENDPOINT_URL_STS)"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "{}",
        run.stderr
    );
}

/// Where something answers the instance metadata address but gives no credentials (a VPN, a
/// proxy, a sandbox: "failed to load IMDS session token"), that is the usual "no credentials"
/// usage error with its fix, exit 2.
#[test]
fn no_credentials_is_a_usage_error_also_when_something_answers_for_imds() {
    for reply in [
        &b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"[..],
        &b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\ntoken"[..],
    ] {
        let (addr, _) = fake_server(reply);
        let dir = tempfile::tempdir().unwrap();
        let run = crate::support::Lew::new()
            .dir(dir.path())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_EC2_METADATA_DISABLED")
            .env(
                "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                format!("http://{addr}"),
            )
            .env("AWS_CONFIG_FILE", dir.path().join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
            .env("AWS_REGION", "eu-west-1")
            .arg("status")
            .code(2);
        assert!(
            run.stderr.contains("no AWS credentials found")
                && run.stderr.contains("instance metadata service"),
            "{}",
            run.stderr
        );
    }
}
