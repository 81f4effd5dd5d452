//! `lew push-image`: the real worker Dockerfile built with the docker CLI (served by podman),
//! pushed to a real registry on loopback after a real `docker login` with the ECR token from
//! moto, and the task definition pinned to the digest the registry reports. Then the image runs
//! against moto as the task definition has Fargate run it (scripts/container/fargate-run.sh) and
//! renders the demo scene, and nothing in that container is writable that Fargate's is not.
//!
//! scripts/test starts the podman service and the registry (scripts/container/env.sh) and
//! exports where they are; without them these tests say so and skip, except in CI.

use std::process::Command;

use crate::support::{ACCOUNT, App, REGION};

/// The container environment, or `None` (skip) outside CI when scripts/test did not set it up.
fn container_env() -> Option<(String, String, String)> {
    match (
        std::env::var("LEW_TEST_REGISTRY"),
        std::env::var("LEW_TEST_REGISTRY_USER"),
        std::env::var("LEW_TEST_REGISTRY_PASSWORD"),
    ) {
        (Ok(r), Ok(u), Ok(p)) => Some((r, u, p)),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "CI must run the push-image tests: scripts/test did not export LEW_TEST_REGISTRY"
            )
        }
        _ => {
            eprintln!("SKIPPED: no container environment (LEW_TEST_SKIP_CONTAINER=1?)");
            None
        }
    }
}

/// The digest the registry holds for `repo:tag`, asked over HTTP with the registry's login.
fn registry_digest(registry: &str, user: &str, password: &str, repo: &str, tag: &str) -> String {
    let out = Command::new("curl")
        .args(["-fsSI", "-u", &format!("{user}:{password}"), "-H"])
        .arg(
            "Accept: application/vnd.docker.distribution.manifest.v2+json, \
             application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.list.v2+json, \
             application/vnd.oci.image.index.v1+json",
        )
        .arg(format!("http://{registry}/v2/{repo}/manifests/{tag}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "HEAD manifest: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("docker-content-digest:")
                .then(|| l.split_once(':').unwrap().1.trim().to_string())
        })
        .expect("the registry names the digest")
}

async fn task_image(app: &App) -> String {
    let aws = app.aws().await;
    let td = aws
        .ecs
        .describe_task_definition()
        .task_definition(format!("{}-worker", app.prefix()))
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap();
    td.container_definitions()[0].image().unwrap().to_string()
}

#[tokio::test]
async fn push_image_builds_logs_in_pushes_and_pins_the_digest() {
    let Some((registry, user, password)) = container_env() else {
        return;
    };
    let app = App::new("");
    app.lew().arg("setup").ok();
    // A login of this test's own, so the push below proves `lew` logged in.
    let docker_config = tempfile::tempdir().unwrap();
    let push = || {
        app.lew()
            .env("LEW_ECR_REGISTRY", &registry)
            .env("DOCKER_CONFIG", docker_config.path())
            .args(["--output", "json", "push-image"])
    };
    let report = push().ok().json();
    let repo = format!("{}-worker", app.prefix());
    let tag = report["tag"].as_str().unwrap().to_string();
    assert_eq!(tag, lew::embedded::worker_source_tag());
    let digest = report["digest"].as_str().unwrap().to_string();
    assert_eq!(report["pushed"], true);
    assert_eq!(report["new_revision"], true);
    assert_eq!(
        digest,
        registry_digest(&registry, &user, &password, &repo, &tag)
    );
    let pinned = format!("{registry}/{repo}@{digest}");
    assert_eq!(report["image"], pinned.as_str());
    assert_eq!(task_image(&app).await, pinned);
    // The token reached the CLI on stdin and ended up only in the CLI's credential store.
    let stored = std::fs::read_to_string(docker_config.path().join("config.json")).unwrap();
    assert!(stored.contains(&registry), "{stored}");

    // The same sources again: same digest, no new revision.
    let again = push().ok().json();
    assert_eq!(again["digest"], digest.as_str());
    assert_eq!(again["new_revision"], false);

    // A later setup keeps the pinned image.
    app.lew()
        .env("LEW_ECR_REGISTRY", &registry)
        .arg("setup")
        .ok();
    assert_eq!(task_image(&app).await, pinned);

    // The image runs as the task definition has Fargate run it (scripts/container/fargate-run.sh:
    // read-only root filesystem without tmpfs, /scratch as the image has it, the image's user),
    // against moto, with the task definition's environment: it renders the demo scene.
    let aws = app.aws().await;
    let zip = lew::scene::load(&crate::render_local::demo_scene())
        .unwrap()
        .zip;
    aws.s3
        .put_object()
        .bucket(app.bucket())
        .key("scenes/img1/lew-demo.zip")
        .body(zip.into())
        .send()
        .await
        .unwrap();
    let queue_url = app.queue_job("img1", "scenes/img1/lew-demo.zip").await;
    // Pulled by its pinned digest, as Fargate pulls it (the run below is podman's, which knows
    // the pushed image only by the digest of its local copy).
    let pull = Command::new("docker")
        .env("DOCKER_CONFIG", docker_config.path())
        .args(["pull", "-q", &pinned])
        .output()
        .unwrap();
    assert!(
        pull.status.success(),
        "{}",
        String::from_utf8_lossy(&pull.stderr)
    );
    let scratch = tempfile::tempdir().unwrap();
    // Values reach the container from the environment (`-e NAME`), never the command line.
    let environment = [
        ("LEW_QUEUE_URL", queue_url.as_str()),
        ("AWS_ENDPOINT_URL", app.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", REGION),
        ("LEW_WAIT_TIME_S", "1"),
    ];
    let out = fargate_run(scratch.path(), &pinned)
        .envs(environment)
        .args(environment.iter().flat_map(|(name, _)| ["-e", name]))
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{logs}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(logs.contains("\"event\": \"rendered\""), "{logs}");
    // It ran the confined way: the work dir was the worker's to lock, and /tmp and /var/tmp
    // were read-only (the worker warns when either is not so).
    assert!(!logs.contains("cannot make it read-only"), "{logs}");
    assert!(!logs.contains("writable by the render user"), "{logs}");
    let png = aws
        .s3
        .get_object()
        .bucket(app.bucket())
        .key("renders/img1/lew-demo.png")
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(&png[1..4], b"PNG");

    // As strict as the task definition: the image's user can write no file or folder but the
    // container runtime's /dev/shm and /dev/mqueue (which the worker clears after every job;
    // Fargate cannot remove them) and /scratch while the worker opens it (0511 until then).
    let find = "/ ( -path /proc -o -path /sys ) -prune -o -writable ( -type d -o -type f ) -print";
    let scan = fargate_run(tempfile::tempdir().unwrap().path(), &pinned)
        .args(["--entrypoint", "/usr/bin/find", "--"])
        .args(find.split(' '))
        .output()
        .unwrap();
    // (find exits 1 for the folders it may not read, such as /root: its list is what counts.)
    let mut writable: Vec<String> = String::from_utf8_lossy(&scan.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    writable.sort();
    assert_eq!(
        writable,
        ["/dev/mqueue", "/dev/shm"],
        "{}",
        String::from_utf8_lossy(&scan.stderr)
    );
}

/// `scripts/container/fargate-run.sh SCRATCH IMAGE`: the image run as the task definition has
/// Fargate run it, with `scratch` as its /scratch volume.
fn fargate_run(scratch: &std::path::Path, image: &str) -> Command {
    let mut command = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/container/fargate-run.sh"
    ));
    command.arg(scratch).arg(image);
    command
}

#[tokio::test]
async fn an_image_already_in_ecr_is_not_built_again() {
    // No container CLI is needed at all when ECR already holds the sources' tag.
    let app = App::new("[worker]\ncontainer_cli = \"podman\"\n");
    app.lew().arg("setup").ok();
    let aws = app.aws().await;
    let tag = lew::embedded::worker_source_tag();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1,
                   "digest": format!("sha256:{}", "a".repeat(64))},
        "layers": []
    });
    let put = aws
        .ecr
        .put_image()
        .repository_name(format!("{}-worker", app.prefix()))
        .image_manifest(manifest.to_string())
        .image_tag(&tag)
        .send()
        .await
        .unwrap();
    let digest = put
        .image()
        .unwrap()
        .image_id()
        .unwrap()
        .image_digest()
        .unwrap()
        .to_string();
    let report = app
        .lew()
        .env("PATH", "/nonexistent")
        .args(["--output", "json", "push-image"])
        .ok()
        .json();
    assert_eq!(report["pushed"], false);
    let pinned = format!(
        "{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{}-worker@{digest}",
        app.prefix()
    );
    assert_eq!(report["image"], pinned.as_str());
    assert_eq!(task_image(&app).await, pinned);
}

#[test]
fn a_missing_cli_or_daemon_is_named_with_the_fix() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    let run = app
        .lew()
        .env("LEW_ECR_REGISTRY", "localhost:9")
        .env("PATH", "/nonexistent")
        .arg("push-image")
        .code(1);
    assert!(
        run.stderr.contains("`docker` is not installed"),
        "{}",
        run.stderr
    );

    let run = app
        .lew()
        .env("LEW_ECR_REGISTRY", "localhost:9")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .arg("push-image")
        .code(1);
    assert!(
        run.stderr.contains("Docker daemon is not running"),
        "{}",
        run.stderr
    );
}

#[test]
fn push_image_before_setup_says_what_to_do() {
    let app = App::new("");
    let run = app.lew().arg("push-image").code(1);
    assert!(
        run.stderr.contains("run `lew setup` first"),
        "{}",
        run.stderr
    );
    let run = app.lew().args(["push-image", "--tag=-bad"]).code(2);
    assert!(
        run.stderr.contains("not a valid image tag"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn push_image_refuses_a_repository_lew_did_not_create() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    // Someone else's repository under lew's name: no lew:app tag.
    let aws = app.aws().await;
    let repo = aws
        .ecr
        .describe_repositories()
        .repository_names(format!("{}-worker", app.prefix()))
        .send()
        .await
        .unwrap();
    let arn = repo.repositories()[0].repository_arn().unwrap().to_string();
    aws.ecr
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys("lew:app")
        .send()
        .await
        .unwrap();
    // Refused before anything is built (no container CLI is needed to get here).
    let run = app
        .lew()
        .arg("push-image")
        .env("PATH", "/nonexistent")
        .code(1);
    assert!(
        run.stderr.contains("is not tagged lew:app") && run.stderr.contains("ECR repository"),
        "{}",
        run.stderr
    );
}
