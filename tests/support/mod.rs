//! Test support: run the real `lew` binary against the moto server `scripts/test` started, and
//! read what it did back with the AWS SDK.
//!
//! moto's state is global to one server, so every test works in its own `App`: a unique app
//! name (hence unique resource names) and its own folder with a `lew.toml`.

#![allow(dead_code)]

pub mod foreign;
pub mod read;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use lew::aws::{Aws, ConnectOptions};

pub const REGION: &str = "eu-west-1";
pub const ACCOUNT: &str = "123456789012";

/// The moto endpoint exported by `scripts/test`.
pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!(
            "AWS_ENDPOINT_URL is not set: run these tests through scripts/test, which starts a \
             moto server and exports it"
        )
    })
}

/// A unique suffix: the process id, the time and a counter (tests run in parallel).
pub fn unique() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:x}",
        (u64::from(std::process::id()) << 32 ^ u64::from(nanos) ^ u64::from(n) << 20)
            % 0xff_ffff_ffff
    )
}

/// A moto server of a test's own, for tests that need the whole server to themselves (the
/// request recorder is global to a server).
pub struct Moto {
    pub url: String,
    child: std::process::Child,
    /// Holds the recorder's file: moto writes it to `./moto_recording` unless told otherwise,
    /// and servers of tests running side by side must not share (or dirty the repository's) one.
    _recording: tempfile::TempDir,
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// A server started with `envs` too, e.g. `LEW_EMULATOR_ECR_REGISTRY` (plain otherwise).
    pub fn start_with(envs: &[(&str, &str)]) -> Moto {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let python = repo.join(".venv/bin/python");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let recording = tempfile::tempdir().unwrap();
        let child = Command::new(&python)
            .arg(repo.join("scripts/moto_server.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env(
                "MOTO_RECORDER_FILEPATH",
                recording.path().join("moto_recording"),
            )
            .env_remove("LEW_EMULATOR_ECR_REGISTRY")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto with {}: {e}", python.display()));
        // Owned at once, so a server that never answers is still stopped (on drop).
        let moto = Moto {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _recording: recording,
        };
        for _ in 0..150 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("moto_server did not start on port {port}");
    }

    fn post(&self, path: &str) {
        let status = Command::new("curl")
            .args([
                "-fsS",
                "-o",
                "/dev/null",
                "-X",
                "POST",
                &format!("{}{path}", self.url),
            ])
            .status()
            .unwrap();
        assert!(status.success(), "POST {path}");
    }

    /// Starts moto's request recorder from an empty recording.
    pub fn record(&self) {
        self.post("/moto-api/recorder/reset-recording");
        self.post("/moto-api/recorder/start-recording");
    }

    /// Stops the recorder and returns the operations recorded, as (operation, mutating).
    pub fn recorded(&self) -> Vec<(String, bool)> {
        self.post("/moto-api/recorder/stop-recording");
        let out = Command::new("curl")
            .args([
                "-fsS",
                &format!("{}/moto-api/recorder/download-recording", self.url),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| classify(&serde_json::from_str(l).unwrap()))
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Names a recorded request and says whether it changes anything. JSON protocols name the
/// operation in X-Amz-Target, query protocols in the body's Action; REST APIs (S3, Lambda) by
/// method: GET and HEAD read.
pub fn classify(req: &serde_json::Value) -> (String, bool) {
    let method = req["method"].as_str().unwrap_or_default().to_string();
    let url = req["url"].as_str().unwrap_or_default();
    let path = url.splitn(4, '/').nth(3).unwrap_or_default();
    if let Some(target) = req["headers"]["X-Amz-Target"].as_str() {
        let op = target.rsplit('.').next().unwrap_or(target).to_string();
        let read = ["Get", "Describe", "List", "Head"]
            .iter()
            .any(|p| op.starts_with(p));
        return (op, !read);
    }
    let body = req["body"].as_str().unwrap_or_default();
    let body = if req["body_encoded"].as_bool() == Some(true) {
        use base64::Engine as _;
        String::from_utf8_lossy(
            &base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap_or_default(),
        )
        .into_owned()
    } else {
        body.to_string()
    };
    if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        let read = ["Get", "Describe", "List"]
            .iter()
            .any(|p| action.starts_with(p));
        return (action.to_string(), !read);
    }
    let mutating = !matches!(method.as_str(), "GET" | "HEAD");
    (format!("{method} /{path}"), mutating)
}

/// One test's world: an app name, a folder, and a `lew.toml` in it.
pub struct App {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub endpoint: String,
}

impl App {
    /// A new app whose lew.toml holds `app`, `region` and then `extra` TOML.
    pub fn new(extra: &str) -> App {
        App::on(&endpoint(), extra)
    }

    /// The same, on a given emulator.
    pub fn on(endpoint: &str, extra: &str) -> App {
        let name = format!("t{}", unique());
        assert!(name.len() <= 20, "{name}");
        let app = App {
            name,
            dir: tempfile::tempdir().unwrap(),
            endpoint: endpoint.to_string(),
        };
        app.write_config(extra);
        app
    }

    pub fn write_config(&self, extra: &str) {
        std::fs::write(
            self.config_path(),
            format!("app = \"{}\"\nregion = \"{REGION}\"\n{extra}", self.name),
        )
        .unwrap();
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("lew.toml")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `lew` with this app's folder as the working directory.
    pub fn lew(&self) -> Lew {
        Lew::new()
            .dir(self.path())
            .env("AWS_ENDPOINT_URL", &self.endpoint)
    }

    /// A session on the emulator for reading back what lew did.
    pub async fn aws(&self) -> Aws {
        let sdk = lew::aws::sdk_config(&ConnectOptions {
            region: Some(REGION.into()),
            endpoint_url: Some(self.endpoint.clone()),
            profile: None,
        })
        .await;
        Aws::from_parts(sdk, REGION.into(), ACCOUNT.into(), "aws".into())
    }

    /// Puts a lew job message for `key` (job `job_id`) on the app's job queue, as the launcher
    /// would; returns the queue's URL.
    pub async fn queue_job(&self, job_id: &str, key: &str) -> String {
        let aws = self.aws().await;
        let queue_url = aws
            .sqs
            .get_queue_url()
            .queue_name(format!("{}-jobs", self.prefix()))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        aws.sqs
            .send_message()
            .queue_url(&queue_url)
            .message_body(
                serde_json::json!({"version": 1, "job_id": job_id, "bucket": self.bucket(),
                    "key": key, "size": 0, "etag": ""})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        queue_url
    }

    pub fn prefix(&self) -> String {
        format!("lew-{}", self.name)
    }

    pub fn bucket(&self) -> String {
        format!("lew-{}-{ACCOUNT}-{REGION}", self.name)
    }

    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!("arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}")
    }
}

/// A `lew` invocation being built.
pub struct Lew {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl Lew {
    pub fn new() -> Lew {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lew"));
        cmd.env_remove("LEW_CONFIG");
        Lew { cmd, stdin: None }
    }

    pub fn dir(mut self, dir: &Path) -> Lew {
        self.cmd.current_dir(dir);
        self
    }

    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Lew {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Lew
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Lew {
        self.cmd.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Lew {
        self.cmd.env_remove(key);
        self
    }

    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Lew {
        self.stdin = Some(input.into());
        self
    }

    /// Runs it and returns what it printed and its exit code.
    pub fn run(mut self) -> Run {
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("cannot start lew");
        if let Some(input) = self.stdin.take() {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(&input).unwrap();
        }
        let out: Output = child.wait_with_output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs it and asserts it succeeded.
    pub fn ok(self) -> Run {
        self.code(0)
    }

    /// Runs it and asserts the exit code.
    pub fn code(self, expected: i32) -> Run {
        let run = self.run();
        assert_eq!(
            run.code, expected,
            "exit code {} (expected {expected})\n--- stdout\n{}\n--- stderr\n{}",
            run.code, run.stdout, run.stderr
        );
        run
    }
}

/// What one `lew` run printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as the one JSON document `--output json` promises.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", self.stdout))
    }
}

/// The JSON list of resources in a setup report, as (resource, name, action).
pub fn actions(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["resource"].as_str().unwrap().to_string(),
                r["name"].as_str().unwrap().to_string(),
                r["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
