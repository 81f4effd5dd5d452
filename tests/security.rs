//! Security, read back from moto (issue 6): every IAM policy `lew setup` wrote is linted with
//! parliament (a real IAM linter from PyPI, pinned in scripts/requirements-test.txt) and checked
//! for scoping; the bucket and the queues are locked down; and `lew push-image`'s registry login
//! keeps the password out of every process's argv and environment and out of what lew and the
//! docker CLI print, also when the login fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName as Attr;
use serde_json::{Value, json};

use crate::support::{ACCOUNT, App, Moto};

fn decode(doc: &str) -> Value {
    serde_json::from_str(&lew::resources::percent_decode(doc)).unwrap()
}

fn statements(policy: &Value) -> Vec<Value> {
    match &policy["Statement"] {
        Value::Array(a) => a.clone(),
        one => vec![one.clone()],
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => vec![],
    }
}

/// Every policy of the app as moto holds it: (name, kind, resource ARN, document).
async fn policies(app: &App) -> Vec<(String, &'static str, String, Value)> {
    let aws = app.aws().await;
    let mut out = Vec::new();
    for role in ["launcher", "task", "execution"] {
        let name = format!("{}-{role}", app.prefix());
        let got = aws.iam.get_role().role_name(&name).send().await.unwrap();
        let r = got.role().unwrap();
        out.push((
            format!("{name}/trust"),
            "trust",
            r.arn().to_string(),
            decode(r.assume_role_policy_document().unwrap()),
        ));
        let attached = aws
            .iam
            .list_attached_role_policies()
            .role_name(&name)
            .send()
            .await
            .unwrap();
        assert!(
            attached.attached_policies().is_empty(),
            "{name} has managed policies attached: {:?}",
            attached.attached_policies()
        );
        let inline = aws
            .iam
            .list_role_policies()
            .role_name(&name)
            .send()
            .await
            .unwrap();
        for policy in inline.policy_names() {
            let doc = aws
                .iam
                .get_role_policy()
                .role_name(&name)
                .policy_name(policy)
                .send()
                .await
                .unwrap()
                .policy_document;
            out.push((
                format!("{name}/{policy}"),
                "identity",
                r.arn().to_string(),
                decode(&doc),
            ));
        }
    }
    let bucket_policy = aws
        .s3
        .get_bucket_policy()
        .bucket(app.bucket())
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
    out.push((
        "bucket policy".into(),
        "resource",
        format!("arn:aws:s3:::{}", app.bucket()),
        serde_json::from_str(&bucket_policy).unwrap(),
    ));
    let function = format!("{}-launcher", app.prefix());
    let fn_policy = aws
        .lambda
        .get_policy()
        .function_name(&function)
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
    out.push((
        "lambda permission".into(),
        "resource",
        app.arn("lambda", &format!("function:{function}")),
        serde_json::from_str(&fn_policy).unwrap(),
    ));
    out
}

#[tokio::test]
async fn every_generated_policy_passes_parliament_and_is_scoped() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let all = policies(&app).await;
    assert_eq!(
        all.len(),
        8,
        "3 trust + 3 inline + bucket + lambda policies"
    );

    // parliament, through tests/reliability/lint_iam.py (it documents every ignored finding).
    let input = app.path().join("policies.json");
    let doc: Vec<Value> = all
        .iter()
        .map(|(name, kind, resource, document)| {
            json!({"name": name, "kind": kind, "resource": resource, "document": document})
        })
        .collect();
    std::fs::write(&input, serde_json::to_vec(&doc).unwrap()).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(repo.join(".venv/bin/python"))
        .arg(repo.join("tests/reliability/lint_iam.py"))
        .arg(&input)
        .output()
        .expect("cannot run .venv/bin/python (scripts/test makes the venv)");
    assert!(
        out.status.success(),
        "lint_iam.py failed (is parliament installed? scripts/requirements-test.txt):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    let ignored = report["ignored"].as_array().unwrap();
    assert!(
        findings.is_empty(),
        "parliament findings: {}",
        serde_json::to_string_pretty(findings).unwrap()
    );
    println!(
        "parliament: {} policy documents linted (read back from moto), 0 findings; {} ignored \
         with a documented reason:",
        report["checked"].as_array().unwrap().len(),
        ignored.len()
    );
    for i in ignored {
        println!(
            "  {} {} ({}): {}",
            i["policy"].as_str().unwrap(),
            i["issue"].as_str().unwrap(),
            i["severity"].as_str().unwrap(),
            i["reason"].as_str().unwrap()
        );
    }

    // No wildcard action; Resource "*" only where AWS allows nothing narrower.
    let may_be_star: BTreeSet<&str> = ["ecr:GetAuthorizationToken", "ecs:ListTasks"].into();
    let task_role = format!("arn:aws:iam::{ACCOUNT}:role/{}-task", app.prefix());
    let execution_role = format!("arn:aws:iam::{ACCOUNT}:role/{}-execution", app.prefix());
    let mut pass_role = Vec::new();
    let mut star_statements = 0;
    for (name, kind, _, document) in &all {
        for s in statements(document) {
            let actions = strings(&s["Action"]);
            assert!(
                s.get("NotAction").is_none() && s.get("NotResource").is_none(),
                "{name}"
            );
            for a in &actions {
                assert!(
                    !a.contains('*') || *kind == "resource",
                    "{name}: action {a}"
                );
            }
            if *kind != "identity" {
                continue;
            }
            assert_eq!(s["Effect"], "Allow", "{name}");
            if strings(&s["Resource"]).iter().any(|r| r == "*") {
                star_statements += 1;
                for a in &actions {
                    assert!(may_be_star.contains(a.as_str()), "{name}: {a} on *");
                }
                if actions.iter().any(|a| a == "ecs:ListTasks") {
                    assert_eq!(
                        s["Condition"]["ArnEquals"]["ecs:cluster"],
                        app.arn("ecs", &format!("cluster/{}", app.prefix()))
                            .as_str(),
                        "{name}: ListTasks limited to the app's cluster"
                    );
                }
            }
            if actions
                .iter()
                .any(|a| a.eq_ignore_ascii_case("iam:PassRole"))
            {
                pass_role.push((name.clone(), s.clone()));
            }
        }
    }
    assert_eq!(pass_role.len(), 1, "one PassRole statement: {pass_role:?}");
    let (owner, s) = &pass_role[0];
    assert!(owner.ends_with("-launcher/lew"), "{owner}");
    assert_eq!(strings(&s["Action"]), ["iam:PassRole"]);
    let passed: BTreeSet<String> = strings(&s["Resource"]).into_iter().collect();
    assert_eq!(passed, [task_role.clone(), execution_role.clone()].into());
    assert_eq!(
        s["Condition"],
        json!({"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}})
    );
    // Trust: each role only for its service; the ECS roles only from this account.
    for (name, kind, _, document) in &all {
        if *kind != "trust" {
            continue;
        }
        let s = statements(document);
        assert_eq!(s.len(), 1, "{name}");
        let service = if name.ends_with("-launcher/trust") {
            "lambda.amazonaws.com"
        } else {
            assert_eq!(
                s[0]["Condition"]["StringEquals"]["aws:SourceAccount"], ACCOUNT,
                "{name}"
            );
            "ecs-tasks.amazonaws.com"
        };
        assert_eq!(s[0]["Principal"], json!({"Service": service}), "{name}");
        assert_eq!(s[0]["Action"], "sts:AssumeRole", "{name}");
    }
    println!(
        "scoping: no wildcard action; Resource \"*\" in {star_statements} statements, only for \
         {may_be_star:?}; iam:PassRole once, for [{task_role}, {execution_role}] with \
         iam:PassedToService = ecs-tasks.amazonaws.com; trust limited to one service principal \
         (and aws:SourceAccount for the ECS roles)"
    );
}

#[tokio::test]
async fn bucket_and_queues_are_locked_down_as_moto_reports_them() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let aws = app.aws().await;
    let bucket = app.bucket();
    let block = aws
        .s3
        .get_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .unwrap()
        .public_access_block_configuration
        .unwrap();
    assert_eq!(
        (
            block.block_public_acls(),
            block.ignore_public_acls(),
            block.block_public_policy(),
            block.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let sse = aws
        .s3
        .get_bucket_encryption()
        .bucket(&bucket)
        .send()
        .await
        .unwrap()
        .server_side_encryption_configuration
        .unwrap();
    let algorithms: Vec<String> = sse
        .rules()
        .iter()
        .filter_map(|r| r.apply_server_side_encryption_by_default())
        .map(|d| d.sse_algorithm().as_str().to_string())
        .collect();
    assert_eq!(algorithms, ["AES256"]);
    let policy: Value = serde_json::from_str(
        &aws.s3
            .get_bucket_policy()
            .bucket(&bucket)
            .send()
            .await
            .unwrap()
            .policy
            .unwrap(),
    )
    .unwrap();
    let arn = format!("arn:aws:s3:::{bucket}");
    let tls = statements(&policy)
        .into_iter()
        .find(|s| s["Condition"]["Bool"]["aws:SecureTransport"] == "false")
        .expect("a statement about aws:SecureTransport");
    assert_eq!(tls["Effect"], "Deny");
    assert_eq!(tls["Principal"], "*");
    assert_eq!(tls["Action"], "s3:*");
    let covered: BTreeSet<String> = strings(&tls["Resource"]).into_iter().collect();
    assert_eq!(covered, [arn.clone(), format!("{arn}/*")].into());

    let mut queues = BTreeMap::new();
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
            .attribute_names(Attr::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        assert_eq!(
            attrs.get(&Attr::SqsManagedSseEnabled).map(String::as_str),
            Some("true"),
            "{name}: {attrs:?}"
        );
        queues.insert(name, "SqsManagedSseEnabled=true");
    }
    println!(
        "bucket {bucket}: public access block 4/4 on, default encryption AES256, policy denies \
         s3:* on the bucket and its objects when aws:SecureTransport is false; queues: {queues:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Secrets: push-image's login

/// What the process-list sampler saw of lew's process tree.
#[derive(Debug, Default)]
struct Sampled {
    samples: u64,
    pids: BTreeSet<u32>,
    commands: BTreeSet<String>,
    leaks: BTreeSet<String>,
}

fn parent_of(pid: &str) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Reads /proc every millisecond until `stop`: the argv and environment of `root` and every
/// process below it, looking for any of `needles`.
fn sample(root: u32, needles: Vec<String>, stop: Arc<AtomicBool>) -> Sampled {
    let mut seen = Sampled::default();
    while !stop.load(Ordering::Relaxed) {
        seen.samples += 1;
        let mut parents = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let (Ok(pid), Some(ppid)) = (name.parse::<u32>(), parent_of(&name)) {
                    parents.insert(pid, ppid);
                }
            }
        }
        let mut tree: BTreeSet<u32> = [root].into();
        loop {
            let before = tree.len();
            for (pid, ppid) in &parents {
                if tree.contains(ppid) {
                    tree.insert(*pid);
                }
            }
            if tree.len() == before {
                break;
            }
        }
        for pid in tree {
            if !parents.contains_key(&pid) {
                continue;
            }
            seen.pids.insert(pid);
            for what in ["cmdline", "environ"] {
                let Ok(raw) = std::fs::read(format!("/proc/{pid}/{what}")) else {
                    continue;
                };
                let text = String::from_utf8_lossy(&raw).replace('\0', " ");
                if what == "cmdline" && !text.trim().is_empty() {
                    seen.commands
                        .insert(text.trim().chars().take(120).collect());
                }
                for n in &needles {
                    if text.contains(n.as_str()) {
                        seen.leaks
                            .insert(format!("/proc/{pid}/{what}: {}", text.trim()));
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    seen
}

struct Watched {
    code: i32,
    stdout: String,
    stderr: String,
    sampled: Sampled,
    seconds: f64,
}

/// Runs lew with the sampler on its process tree. The test's own environment carries the
/// registry password (scripts/test exports it for the image tests): lew does not get it.
fn watch_lew(app: &App, args: &[&str], envs: &[(&str, &str)], needles: &[String]) -> Watched {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lew"));
    cmd.current_dir(app.path())
        .env_remove("LEW_CONFIG")
        .env_remove("LEW_TEST_REGISTRY_PASSWORD")
        .env_remove("LEW_REGISTRY_PASSWORD")
        .env("AWS_ENDPOINT_URL", &app.endpoint)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let child = cmd.spawn().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, needles, root) = (stop.clone(), needles.to_vec(), child.id());
        std::thread::spawn(move || sample(root, needles, stop))
    };
    let out = child.wait_with_output().unwrap();
    stop.store(true, Ordering::Relaxed);
    Watched {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        sampled: sampler.join().unwrap(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// A second registry on loopback whose htpasswd holds another password for the same user, so
/// the login with moto's ECR token fails with 401. Stopped on drop.
struct WrongPasswordRegistry {
    child: std::process::Child,
    host: String,
    _dir: tempfile::TempDir,
}

impl WrongPasswordRegistry {
    fn start(user: &str) -> WrongPasswordRegistry {
        let dir = tempfile::tempdir().unwrap();
        let mut htpasswd = Command::new("htpasswd")
            .args(["-niB", user])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("htpasswd (apache2-utils, installed by scripts/container/env.sh)");
        {
            use std::io::Write as _;
            let mut stdin = htpasswd.stdin.take().unwrap();
            stdin.write_all(b"not-the-ecr-token").unwrap();
        }
        let hashed = htpasswd.wait_with_output().unwrap().stdout;
        std::fs::write(
            dir.path().join("htpasswd"),
            String::from_utf8_lossy(&hashed).trim(),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            dir.path().join("config.yml"),
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}/data\nhttp:\n  \
                 addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: lew-wrong-password\n    \
                 path: {}/htpasswd\n",
                dir.path().display(),
                dir.path().display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (installed by scripts/container/env.sh)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        WrongPasswordRegistry {
            child,
            host: format!("localhost:{port}"),
            _dir: dir,
        }
    }
}

impl Drop for WrongPasswordRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `docker` first on PATH that writes down exactly what it was started with, its argv and its
/// environment, and then becomes the real docker CLI (`exec`: the same process, so the same
/// argv). Unlike the sampler it cannot miss a command that ends quickly, such as the login.
struct DockerRecorder {
    dir: tempfile::TempDir,
}

/// One command lew ran, as the recorder saw it.
struct Recorded {
    argv: Vec<String>,
    environ: Vec<String>,
}

impl DockerRecorder {
    fn new() -> DockerRecorder {
        let real = std::env::var_os("PATH")
            .and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join("docker"))
                    .find(|p| p.is_file())
            })
            .expect("a docker CLI (scripts/container/env.sh installs one)");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let script = format!(
            "#!/bin/sh\nprintf '%s\\0' \"$@\" >'{d}/call-'$$'.argv'\nenv -0 >'{d}/call-'$$'.env'\n\
             exec '{}' \"$@\"\n",
            real.display()
        );
        let shim = dir.path().join("docker");
        std::fs::write(&shim, script).unwrap();
        std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        DockerRecorder { dir }
    }

    /// PATH with the recorder first.
    fn path(&self) -> String {
        format!(
            "{}:{}",
            self.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// Every docker command started since the last call.
    fn take(&self) -> Vec<Recorded> {
        let mut calls = Vec::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "argv") {
                let split = |raw: Vec<u8>| -> Vec<String> {
                    String::from_utf8_lossy(&raw)
                        .split('\0')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                };
                let env_path = path.with_extension("env");
                calls.push(Recorded {
                    argv: split(std::fs::read(&path).unwrap()),
                    environ: split(std::fs::read(&env_path).unwrap()),
                });
                std::fs::remove_file(&path).unwrap();
                std::fs::remove_file(&env_path).unwrap();
            }
        }
        calls
    }
}

/// The one `docker login` among `calls`, checked: the user on the command line, the password
/// only on stdin, and no secret in any command's argv or environment.
fn checked_login(calls: &[Recorded], needles: &[String]) -> String {
    for call in calls {
        for n in needles {
            assert!(
                !call.argv.iter().any(|a| a.contains(n.as_str())),
                "a secret in argv: {:?}",
                call.argv
            );
            assert!(
                !call.environ.iter().any(|e| e.contains(n.as_str())),
                "a secret in the environment of `docker {}`",
                call.argv.join(" ")
            );
        }
    }
    let logins: Vec<&Recorded> = calls
        .iter()
        .filter(|c| c.argv.first().map(String::as_str) == Some("login"))
        .collect();
    assert_eq!(
        logins.len(),
        1,
        "lew ran one docker login: {:?}",
        calls.iter().map(|c| c.argv.join(" ")).collect::<Vec<_>>()
    );
    let argv = &logins[0].argv;
    assert!(
        argv.iter().any(|a| a == "--password-stdin") && argv.iter().any(|a| a == "AWS"),
        "{argv:?}"
    );
    format!("docker {}", argv.join(" "))
}

#[tokio::test]
async fn the_registry_password_is_never_in_argv_environment_or_output() {
    let (registry, user) = match (
        std::env::var("LEW_TEST_REGISTRY"),
        std::env::var("LEW_TEST_REGISTRY_USER"),
    ) {
        (Ok(r), Ok(u)) => (r, u),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI must run the login test: scripts/test did not export LEW_TEST_REGISTRY")
        }
        _ => {
            eprintln!("SKIPPED: no container environment (LEW_TEST_SKIP_CONTAINER=1?)");
            return;
        }
    };
    let app = App::new("");
    app.lew().arg("setup").ok();
    // What moto's GetAuthorizationToken hands out: base64("AWS:<account>-auth-token").
    let aws = app.aws().await;
    let token = aws
        .ecr
        .get_authorization_token()
        .send()
        .await
        .unwrap()
        .authorization_data()[0]
        .authorization_token()
        .unwrap()
        .to_string();
    let decoded = {
        use base64::Engine as _;
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(&token)
                .unwrap(),
        )
        .unwrap()
    };
    let password = decoded.split_once(':').unwrap().1.to_string();
    assert_eq!(password, format!("{ACCOUNT}-auth-token"));
    let needles = vec![password.clone(), token.clone()];
    let docker_config = tempfile::tempdir().unwrap();
    let config = docker_config.path().to_str().unwrap();
    let recorder = DockerRecorder::new();
    let path = recorder.path();

    // 1. The login that works (then build and push), verbose: the CLI's output is shown.
    let ok = watch_lew(
        &app,
        &["-v", "push-image"],
        &[("DOCKER_CONFIG", config), ("PATH", &path)],
        &needles,
    );
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
    let calls = recorder.take();
    let login = checked_login(&calls, &needles);
    assert!(login.ends_with(&format!(" {registry}")), "{login}");
    for n in &needles {
        assert!(!ok.stdout.contains(n.as_str()) && !ok.stderr.contains(n.as_str()));
    }
    assert!(ok.sampled.leaks.is_empty(), "{:?}", ok.sampled.leaks);
    assert!(
        ok.sampled.commands.iter().any(|c| c.contains("docker ")),
        "the sampler saw lew's docker commands: {:?}",
        ok.sampled.commands
    );
    println!(
        "login ok: lew -v push-image ({:.0} s): {} docker commands recorded with their argv and \
         environment, among them `{login}`; /proc sampled {} times ({} processes of lew's tree); \
         argv and environment never held the password or the token; stdout + stderr ({} bytes, \
         with the docker CLI's output) never did either",
        ok.seconds,
        calls.len(),
        ok.sampled.samples,
        ok.sampled.pids.len(),
        ok.stdout.len() + ok.stderr.len()
    );

    // 2. A login that fails: an emulator whose ECR leads to a registry that wants another
    // password for the same user. (--tag: pushed whatever ECR holds, so the refusal is the
    // first thing that registry is asked.)
    let wrong = WrongPasswordRegistry::start(&user);
    let moto = Moto::start_with(&[("LEW_EMULATOR_ECR_REGISTRY", &wrong.host)]);
    let elsewhere = App::on(&moto.url, "");
    elsewhere.lew().arg("setup").ok();
    for args in [
        &["-v", "push-image", "--tag", "refused"][..],
        &["-v", "--output", "json", "push-image", "--tag", "refused"][..],
    ] {
        let failed = watch_lew(
            &elsewhere,
            args,
            &[("DOCKER_CONFIG", config), ("PATH", &path)],
            &needles,
        );
        assert_eq!(failed.code, 1, "{}\n{}", failed.stdout, failed.stderr);
        let all = format!("{}\n{}", failed.stdout, failed.stderr);
        assert!(
            all.contains(&format!("cannot log in to {}", wrong.host)),
            "{all}"
        );
        assert!(
            all.contains("401") || all.to_lowercase().contains("unauthorized"),
            "the failure says why: {all}"
        );
        for n in &needles {
            assert!(!all.contains(n.as_str()), "{n} printed:\n{all}");
        }
        let login = checked_login(&recorder.take(), &needles);
        assert!(
            failed.sampled.leaks.is_empty(),
            "{:?}",
            failed.sampled.leaks
        );
        let reason = all
            .lines()
            .find(|l| l.contains("cannot log in"))
            .unwrap_or_default()
            .trim()
            .to_string();
        println!(
            "login refused (lew {}): exit 1, \"{reason}\"; `{login}` recorded; /proc sampled {} \
             times; the password and the token appear in no argv, environment or output",
            args.join(" "),
            failed.sampled.samples
        );
    }
}
