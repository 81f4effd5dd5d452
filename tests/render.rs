//! `lew render` end to end on the emulator: lew uploads, the local runner (scripts/runner)
//! plays Lambda and Fargate with the wiring read back from moto, the real worker renders with
//! the real povray, and lew waits and downloads.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName as Attr;

use crate::render_local::{TINY_POV, demo_scene, png_size, tiny_ini, write_zip};
use crate::support::App;

/// The local runner for one app, stopped (SIGTERM) when dropped.
pub struct Runner {
    child: Child,
    lines: Arc<Mutex<Vec<serde_json::Value>>>,
    _work: tempfile::TempDir,
}

impl Runner {
    pub fn start(app: &App) -> Runner {
        Runner::start_with(app, &[])
    }

    /// A runner that also launches for objects uploaded before it started.
    fn start_including_existing(app: &App) -> Runner {
        Runner::start_with(app, &["--include-existing"])
    }

    fn start_with(app: &App, extra: &[&str]) -> Runner {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let work = tempfile::tempdir().unwrap();
        let mut child = Command::new(repo.join(".venv/bin/python"))
            .arg(repo.join("scripts/runner/runner.py"))
            .args(["--app", &app.name, "--poll", "0.25"])
            .args(extra)
            // A worker's last empty poll would otherwise hold its task for 20 s, and its wait
            // for more work (worker.idle_s) for a minute.
            .args([
                "--task-env",
                "LEW_WAIT_TIME_S=1",
                "--task-env",
                "LEW_IDLE_S=0",
            ])
            .arg("--work-dir")
            .arg(work.path())
            .env("AWS_ENDPOINT_URL", &app.endpoint)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start scripts/runner/runner.py");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if v["event"] == "watching" {
                        let _ = ready_tx.send(());
                    }
                    sink.lock().unwrap().push(v);
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the runner did not start watching");
        Runner {
            child,
            lines,
            _work: work,
        }
    }

    pub fn events(&self, name: &str) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["event"] == name)
            .cloned()
            .collect()
    }

    /// Waits (bounded) until no task the runner started is still running.
    pub fn wait_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.events("task_started").len() > self.events("task_stopped").len() {
            assert!(Instant::now() < deadline, "tasks still running");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn tiny_zip(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.zip"));
    write_zip(
        &path,
        &[
            (&format!("{name}.pov"), TINY_POV),
            (&format!("{name}.ini"), &tiny_ini(name)),
        ],
    );
    path
}

async fn queue_depths(app: &App) -> Vec<(String, String, String)> {
    let aws = app.aws().await;
    let mut out = Vec::new();
    for name in [
        format!("{}-jobs", app.prefix()),
        format!("{}-jobs-dlq", app.prefix()),
    ] {
        let url = aws
            .sqs
            .get_queue_url()
            .queue_name(&name)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let attrs = aws
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(Attr::ApproximateNumberOfMessages)
            .attribute_names(Attr::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        out.push((
            name,
            attrs[&Attr::ApproximateNumberOfMessages].clone(),
            attrs[&Attr::ApproximateNumberOfMessagesNotVisible].clone(),
        ));
    }
    out
}

/// Every worker log line, from CloudWatch.
pub async fn worker_log(app: &App) -> Vec<serde_json::Value> {
    let aws = app.aws().await;
    let pages = aws
        .logs
        .filter_log_events()
        .log_group_name(format!("/lew/{}/worker", app.name))
        .into_paginator()
        .send()
        .try_collect()
        .await
        .unwrap();
    pages
        .iter()
        .flat_map(|p| p.events())
        .filter_map(|e| serde_json::from_str(e.message().unwrap_or_default()).ok())
        .collect()
}

#[tokio::test]
async fn the_demo_scene_renders_in_the_cloud_and_lands_in_out() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let out = app.path().join("out");
    let mut cmd = lew_command(&app);
    cmd.args(["--output", "json", "render", "--timeout", "3m", "--out"])
        .arg(&out)
        .arg(demo_scene());
    let mut lew = Watched::spawn(cmd);
    // Without a terminal each new stage is a line of its own, so a CI log shows progress: the
    // launcher (the runner) starts only once lew has said where the scene stands.
    lew.wait_for(
        "stderr",
        "lew-demo: uploaded; the launcher has not queued it yet",
    );
    let runner = Runner::start_including_existing(&app);
    let run = lew.finish();
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("lew-demo: queued") || l.starts_with("lew-demo: rendering")),
        "{}",
        run.stderr
    );
    let report = run.json();
    assert_eq!(report["scenes"][0]["state"], "done", "{report}");
    assert_eq!(png_size(&out.join("lew-demo.png")), (640, 360));
    let job = report["job_id"].as_str().unwrap().to_string();
    runner.wait_idle();
    for (name, visible, in_flight) in queue_depths(&app).await {
        assert_eq!((visible.as_str(), in_flight.as_str()), ("0", "0"), "{name}");
    }
    // The launcher ran once, for this object, and the worker logged the render.
    assert_eq!(runner.events("invoked").len(), 1);
    let rendered: Vec<_> = worker_log(&app)
        .await
        .into_iter()
        .filter(|l| l["event"] == "rendered")
        .collect();
    assert_eq!(rendered.len(), 1);
    assert_eq!(rendered[0]["job_id"], job.as_str());

    // `lew logs worker --job` shows this job's lines.
    let logs = app
        .lew()
        .args(["logs", "worker", "--since", "1h", "--job", &job])
        .ok();
    assert!(logs.stdout.contains("\"rendered\""), "{}", logs.stdout);
    assert!(
        logs.stdout.lines().all(|l| l.contains(&job)),
        "{}",
        logs.stdout
    );
    let launcher_logs = app.lew().args(["logs", "launcher", "--since", "1h"]).ok();
    assert!(
        launcher_logs.stdout.contains("queued"),
        "{}",
        launcher_logs.stdout
    );
}

#[tokio::test]
async fn five_scenes_with_two_workers_each_render_exactly_once() {
    let app = App::new("[worker]\nmax_tasks = 2\n");
    app.lew().arg("setup").ok();
    let runner = Runner::start(&app);
    let names = ["one", "two", "three", "four", "five"];
    let zips: Vec<PathBuf> = names.iter().map(|n| tiny_zip(app.path(), n)).collect();
    let out = app.path().join("out");
    let report = app
        .lew()
        .args(["--output", "json", "render", "--timeout", "3m", "--out"])
        .arg(&out)
        .args(&zips)
        .ok()
        .json();
    for (i, name) in names.iter().enumerate() {
        assert_eq!(report["scenes"][i]["state"], "done", "{report}");
        assert_eq!(png_size(&out.join(format!("{name}.png"))), (64, 48));
    }
    runner.wait_idle();
    let mut rendered: Vec<String> = worker_log(&app)
        .await
        .into_iter()
        .filter(|l| l["event"] == "rendered")
        .map(|l| l["key"].as_str().unwrap().to_string())
        .collect();
    rendered.sort();
    let mut unique = rendered.clone();
    unique.dedup();
    assert_eq!(rendered.len(), 5, "each scene exactly once: {rendered:?}");
    assert_eq!(unique.len(), 5);
    for (name, visible, in_flight) in queue_depths(&app).await {
        assert_eq!((visible.as_str(), in_flight.as_str()), ("0", "0"), "{name}");
    }
    // Never more than max_tasks workers at once.
    let mut running = 0i32;
    let mut most = 0;
    for line in runner.lines.lock().unwrap().iter() {
        if line["event"] == "task_started" {
            running += 1;
            most = most.max(running);
        } else if line["event"] == "task_stopped" {
            running -= 1;
        }
    }
    assert!(
        (1..=2).contains(&most),
        "at most 2 tasks at once, saw {most}"
    );
}

#[tokio::test]
async fn a_failing_scene_exits_1_with_its_reason_while_a_good_one_renders() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let _runner = Runner::start(&app);
    let bad = app.path().join("broken.zip");
    write_zip(
        &bad,
        &[
            ("broken.pov", "#include \"nowhere.inc\"\nsphere { 0, 1 }\n"),
            ("broken.ini", &tiny_ini("broken")),
        ],
    );
    let good = tiny_zip(app.path(), "fine");
    let run = app
        .lew()
        .args(["render", "--timeout", "3m"])
        .arg(&bad)
        .arg(&good)
        .code(1);
    assert!(run.stdout.contains("FAILED"), "{}", run.stdout);
    assert!(run.stdout.contains("nowhere.inc"), "{}", run.stdout);
    assert!(app.path().join("fine.png").exists());
    assert!(!app.path().join("broken.png").exists());
    // The report is the reason and POV-Ray's lines about it, once: not its option banner.
    assert!(!run.stdout.contains("Dithering"), "{}", run.stdout);
    assert!(
        run.stdout.contains("Fatal error in parser"),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stdout
            .matches("Cannot open include file nowhere.inc")
            .count(),
        1,
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn an_upload_the_launcher_never_queues_is_named_as_such() {
    // Set up, but nothing plays the launcher: the upload never becomes a job.
    let app = App::new("");
    app.lew().arg("setup").ok();
    let scene = tiny_zip(app.path(), "unheard");
    let run = app
        .lew()
        .args(["--output", "json", "render", "--timeout", "40s"])
        .arg(&scene)
        .code(3);
    let report = run.json();
    assert_eq!(
        report["scenes"][0]["stage"], "uploaded; the launcher has not queued it yet",
        "{report}"
    );
    assert!(
        run.stderr
            .contains("the launcher has not queued the scenes")
            && run.stderr.contains("lew logs launcher"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn without_workers_the_wait_times_out_with_exit_3_and_says_how_to_check() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let scene = tiny_zip(app.path(), "lonely");
    let run = app
        .lew()
        .args(["render", "--timeout", "2s"])
        .arg(&scene)
        .code(3);
    assert!(run.stdout.contains("timed out"), "{}", run.stdout);
    assert!(run.stdout.contains("lew status"), "{}", run.stdout);
    assert!(run.stdout.contains("lonely"), "{}", run.stdout);
}

#[tokio::test]
async fn no_wait_returns_the_job_and_status_shows_it_queued() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let scene = tiny_zip(app.path(), "later");
    let report = app
        .lew()
        .args(["--output", "json", "render", "--no-wait"])
        .arg(&scene)
        .ok()
        .json();
    let job = report["job_id"].as_str().unwrap();
    assert_eq!(report["scenes"][0]["state"], "submitted");
    assert_eq!(
        report["scenes"][0]["output_key"],
        format!("renders/{job}/later.png").as_str()
    );
    let aws = app.aws().await;
    aws.s3
        .head_object()
        .bucket(app.bucket())
        .key(format!("scenes/{job}/later.zip"))
        .send()
        .await
        .expect("the scene was uploaded");
    // No runner: S3 -> Lambda does not run on moto, so nothing was queued yet; once the
    // launcher runs (the runner, started now) the job is queued and rendered.
    let runner = Runner::start_including_existing(&app);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = app.lew().args(["--output", "json", "status"]).ok().json();
        let recent = status["recent_renders"].to_string();
        if recent.contains(&format!("renders/{job}/later.png")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "status never showed the render: {status}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(runner);
}

#[tokio::test]
async fn rendering_the_same_file_again_makes_a_new_job_and_a_new_image() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let _runner = Runner::start(&app);
    let scene = tiny_zip(app.path(), "again");
    let first = app
        .lew()
        .args(["--output", "json", "render", "--timeout", "3m"])
        .arg(&scene)
        .ok()
        .json();
    let second = app
        .lew()
        .args(["--output", "json", "render", "--force", "--timeout", "3m"])
        .arg(&scene)
        .ok()
        .json();
    assert_ne!(first["job_id"], second["job_id"]);
    let aws = app.aws().await;
    for report in [&first, &second] {
        let key = report["scenes"][0]["output_key"].as_str().unwrap();
        aws.s3
            .head_object()
            .bucket(app.bucket())
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
    }
}

/// A running `lew` whose stdout and stderr are collected as they arrive, so a test can wait
/// for what lew says before acting.
struct Watched {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Watched {
    fn spawn(mut cmd: Command) -> Watched {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        fn collect(
            mut from: impl std::io::Read + Send + 'static,
            into: Arc<Mutex<String>>,
        ) -> std::thread::JoinHandle<()> {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    into.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            })
        }
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), stdout.clone()),
            collect(child.stderr.take().unwrap(), stderr.clone()),
        ];
        Watched {
            child,
            stdout,
            stderr,
            readers,
        }
    }

    /// Waits until `stream` (stdout or stderr of this lew) holds `what`; the bound only guards
    /// against a hang, and lew must still be running then.
    fn wait_for(&mut self, stream: &str, what: &str) {
        let text = if stream == "stdout" {
            &self.stdout
        } else {
            &self.stderr
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while !text.lock().unwrap().contains(what) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "lew exited ({status}) before its {stream} said {what:?}:\n{}\n{}",
                    self.stdout.lock().unwrap(),
                    self.stderr.lock().unwrap()
                );
            }
            assert!(
                Instant::now() < deadline,
                "lew's {stream} did not say {what:?} within 120 s:\n{}",
                text.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for lew to finish, which must succeed, and returns what it printed.
    fn finish(mut self) -> crate::support::Run {
        let status = self.child.wait().unwrap();
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        let run = crate::support::Run {
            code: status.code().unwrap_or(-1),
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr.lock().unwrap().clone(),
        };
        assert_eq!(run.code, 0, "{run:?}");
        run
    }

    /// Sends SIGINT and returns the exit code and everything lew printed.
    fn interrupt(mut self) -> (i32, String, String) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        (
            status.code().unwrap_or(-1),
            self.stdout.lock().unwrap().clone(),
            self.stderr.lock().unwrap().clone(),
        )
    }
}

fn lew_command(app: &App) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lew"));
    cmd.current_dir(app.path())
        .env("AWS_ENDPOINT_URL", &app.endpoint)
        .env_remove("LEW_CONFIG");
    cmd
}

#[tokio::test]
async fn ctrl_c_while_waiting_leaves_the_job_running_and_says_so() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let scene = tiny_zip(app.path(), "patient");
    let mut cmd = lew_command(&app);
    cmd.args(["render", "--timeout", "5m"]).arg(&scene);
    let mut lew = Watched::spawn(cmd);
    // Uploaded and waiting: the first stage line (no runner, so nothing ever queues it).
    lew.wait_for(
        "stderr",
        "patient: uploaded; the launcher has not queued it yet",
    );
    let (code, _, stderr) = lew.interrupt();
    assert_eq!(code, 130, "{stderr}");
    assert!(stderr.contains("keeps running in the cloud"), "{stderr}");
    // The scene is still there for the launcher to pick up.
    let aws = app.aws().await;
    let listed = aws
        .s3
        .list_objects_v2()
        .bucket(app.bucket())
        .prefix("scenes/")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents().len(), 1);
}

#[tokio::test]
async fn logs_follow_prints_new_lines_until_interrupted() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let aws = app.aws().await;
    let group = format!("/lew/{}/worker", app.name);
    aws.logs
        .create_log_stream()
        .log_group_name(&group)
        .log_stream_name("worker/worker/abc")
        .send()
        .await
        .unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let put = |message: &'static str| {
        aws.logs
            .put_log_events()
            .log_group_name(&group)
            .log_stream_name("worker/worker/abc")
            .log_events(
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(now())
                    .message(message)
                    .build()
                    .unwrap(),
            )
            .send()
    };
    put("{\"event\": \"before\"}").await.unwrap();
    let mut cmd = lew_command(&app);
    cmd.args(["logs", "worker", "--follow"]);
    let mut lew = Watched::spawn(cmd);
    // Following: the line that was there is printed; then a new one must come through too.
    lew.wait_for("stdout", "before");
    put("{\"event\": \"after\"}").await.unwrap();
    lew.wait_for("stdout", "after");
    let (code, stdout, stderr) = lew.interrupt();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("before") && stdout.contains("after"),
        "{stdout}"
    );
    assert!(stdout.contains("worker/worker/abc"), "{stdout}");
}

#[tokio::test]
async fn an_image_that_appears_locally_while_waiting_is_kept_and_the_render_says_where_it_is() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let scene = tiny_zip(app.path(), "clash");
    let out = app.path().join("out");
    let mut cmd = lew_command(&app);
    cmd.args(["--output", "json", "render", "--timeout", "3m", "--out"])
        .arg(&out)
        .arg(&scene)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    // Uploaded, waiting (no runner yet): now someone writes the file lew checked was absent.
    let aws = app.aws().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = aws
            .s3
            .list_objects_v2()
            .bucket(app.bucket())
            .prefix("scenes/")
            .send()
            .await
            .unwrap();
        if !listed.contents().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the scene was never uploaded");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::write(out.join("clash.png"), b"mine").unwrap();
    let _runner = Runner::start_including_existing(&app);
    let run = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let scene = &report["scenes"][0];
    assert_eq!(scene["state"], "failed", "{report}");
    let error = scene["error"].as_str().unwrap();
    let job = report["job_id"].as_str().unwrap();
    assert!(
        error.contains("rendered, but the download failed")
            && error.contains(&format!("renders/{job}/clash.png")),
        "{error}"
    );
    assert_eq!(std::fs::read(out.join("clash.png")).unwrap(), b"mine");
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["clash.png"]);
}

#[tokio::test]
async fn no_wait_does_not_refuse_an_image_it_will_not_download() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let scene = tiny_zip(app.path(), "again");
    std::fs::write(app.path().join("again.png"), b"old").unwrap();
    let report = app
        .lew()
        .args(["--output", "json", "render", "--no-wait"])
        .arg(&scene)
        .ok()
        .json();
    assert_eq!(report["scenes"][0]["state"], "submitted", "{report}");
    assert_eq!(std::fs::read(app.path().join("again.png")).unwrap(), b"old");
}

#[tokio::test]
async fn status_warns_about_jobs_no_worker_is_there_to_take() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let status = app.lew().args(["--output", "json", "status"]).ok().json();
    assert!(
        !status["warnings"].to_string().contains("wait in the queue"),
        "{status}"
    );
    // A job handed back by a worker that was then stopped: queued, nobody running.
    app.queue_job("left", "scenes/left/left.zip").await;
    let status = app.lew().args(["--output", "json", "status"]).ok().json();
    assert!(
        status["warnings"]
            .to_string()
            .contains("1 job(s) wait in the queue and no worker task is running"),
        "{status}"
    );
}

#[tokio::test]
async fn a_scene_named_with_spaces_plus_and_percent_goes_all_the_way_round() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let _runner = Runner::start(&app);
    // S3 events carry the key URL-encoded (`+` for a space): the launcher must decode it to the
    // very key lew uploaded, and the worker write the PNG under the name lew downloads.
    let name = "my scene+1%20";
    let zip = app.path().join(format!("{name}.zip"));
    write_zip(
        &zip,
        &[
            ("plain.pov", TINY_POV),
            (&format!("{name}.ini"), &tiny_ini("plain")),
        ],
    );
    let out = app.path().join("out");
    let report = app
        .lew()
        .args(["--output", "json", "render", "--timeout", "3m", "--out"])
        .arg(&out)
        .arg(&zip)
        .ok()
        .json();
    assert_eq!(report["scenes"][0]["state"], "done", "{report}");
    let job = report["job_id"].as_str().unwrap();
    assert_eq!(
        report["scenes"][0]["output_key"],
        format!("renders/{job}/{name}.png").as_str()
    );
    assert_eq!(png_size(&out.join(format!("{name}.png"))), (64, 48));
}
