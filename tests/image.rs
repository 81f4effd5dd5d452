//! `lew push-image`: the real worker Dockerfile built with the docker CLI (served by podman),
//! then with podman itself, pushed the one way lew pushes: the repository URI and a login from
//! ECR (moto, whose ECR scripts/test points at a real registry on loopback: see
//! scripts/moto_server.py), a real `login --password-stdin` to the token's proxy endpoint, a push
//! to the URI, and the task definition pinned to the digest ECR then reports, which must be the
//! registry's own. Then the image runs against moto as the task definition has Fargate run it
//! (scripts/container/fargate-run.sh), renders the demo scene and a still split in two bands,
//! which it stitches into POV-Ray's whole image, and nothing in that container is writable that
//! Fargate's is not.
//!
//! scripts/test starts the podman service and the registry (scripts/container/env.sh) and
//! exports where they are; without them these tests say so and skip, except in CI.

use std::process::Command;

use crate::support::{App, REGION};

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

/// The repository's URI as the emulator's ECR answers it.
async fn repository_uri(app: &App) -> String {
    let aws = app.aws().await;
    let repos = aws
        .ecr
        .describe_repositories()
        .repository_names(format!("{}-worker", app.prefix()))
        .send()
        .await
        .unwrap();
    repos.repositories()[0]
        .repository_uri()
        .unwrap()
        .to_string()
}

/// The digest ECR reports for `tag` (DescribeImages), as lew reads it.
async fn ecr_digest(app: &App, tag: &str) -> String {
    let aws = app.aws().await;
    let out = aws
        .ecr
        .describe_images()
        .repository_name(format!("{}-worker", app.prefix()))
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(tag)
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.image_details()[0].image_digest().unwrap().to_string()
}

#[tokio::test]
async fn push_image_builds_logs_in_pushes_and_pins_the_digest() {
    let Some((registry, user, password)) = container_env() else {
        return;
    };
    let app = App::new("");
    app.lew().arg("setup").ok();
    let repo = format!("{}-worker", app.prefix());
    // The world lew sees is ECR's: the repository's URI is where the registry is.
    let uri = repository_uri(&app).await;
    assert_eq!(
        uri,
        format!("{registry}/{repo}"),
        "scripts/test starts moto with its ECR on the local registry"
    );
    // A login of this test's own, so the push below proves `lew` logged in.
    let docker_config = tempfile::tempdir().unwrap();
    let push = || {
        app.lew().env("DOCKER_CONFIG", docker_config.path()).args([
            "--output",
            "json",
            "push-image",
        ])
    };
    let report = push().ok().json();
    let tag = report["tag"].as_str().unwrap().to_string();
    assert_eq!(tag, lew::embedded::worker_source_tag());
    let digest = report["digest"].as_str().unwrap().to_string();
    assert_eq!(report["pushed"], true);
    assert_eq!(report["new_revision"], true);
    // The digest is the registry's own, as ECR reports it.
    assert_eq!(
        digest,
        registry_digest(&registry, &user, &password, &repo, &tag)
    );
    assert_eq!(digest, ecr_digest(&app, &tag).await);
    let pinned = format!("{uri}@{digest}");
    assert_eq!(report["image"], pinned.as_str());
    assert_eq!(task_image(&app).await, pinned);
    // The token reached the CLI on stdin and ended up only in the CLI's credential store,
    // under the proxy endpoint's host.
    let stored = std::fs::read_to_string(docker_config.path().join("config.json")).unwrap();
    assert!(stored.contains(&registry), "{stored}");

    // The same sources again: ECR has the tag, so nothing is built or pushed.
    let again = push().ok().json();
    assert_eq!(again["pushed"], false);
    assert_eq!(again["digest"], digest.as_str());
    assert_eq!(again["new_revision"], false);

    // A later setup keeps the pinned image (its URI is the one ECR names).
    app.lew().arg("setup").ok();
    assert_eq!(task_image(&app).await, pinned);

    // `container_cli = "podman"`, the other documented choice: podman builds, logs in and
    // pushes (a new tag, so it does). podman's own login runs in the client, which reads
    // registries.conf for the plain-HTTP registry (env.sh's; a TLS registry such as ECR's
    // needs none) and keeps the login in its auth file.
    let podman_auth = tempfile::tempdir().unwrap();
    app.write_config("[worker]\ncontainer_cli = \"podman\"\n");
    let podman_tag = format!("podman-{}", app.name);
    let state = std::env::var("CONTAINER_STATE_DIR").expect("exported by scripts/container/env.sh");
    let by_podman = app
        .lew()
        .env(
            "CONTAINERS_REGISTRIES_CONF",
            format!("{state}/registries.conf"),
        )
        .env("REGISTRY_AUTH_FILE", podman_auth.path().join("auth.json"))
        .env("PATH", only_podman(podman_auth.path()))
        .args(["--output", "json", "push-image", "--tag", &podman_tag])
        .ok()
        .json();
    assert_eq!(by_podman["pushed"], true);
    let podman_digest = by_podman["digest"].as_str().unwrap().to_string();
    assert_eq!(
        podman_digest,
        registry_digest(&registry, &user, &password, &repo, &podman_tag)
    );
    assert_eq!(podman_digest, ecr_digest(&app, &podman_tag).await);
    assert_eq!(task_image(&app).await, format!("{uri}@{podman_digest}"));
    let stored = std::fs::read_to_string(podman_auth.path().join("auth.json")).unwrap();
    assert!(stored.contains(&registry), "{stored}");
    // Back to the docker-built image for the run below.
    app.write_config("");
    app.lew()
        .env("DOCKER_CONFIG", docker_config.path())
        .args(["push-image"])
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
    // And a still split in two bands (lew's own plan for 100 rows), as the launcher queues
    // them: the same worker renders both and then stitches them, which needs pypng and
    // botocore's S3 paginators in the trimmed image (worker/Dockerfile).
    let scenes = tempfile::tempdir().unwrap();
    let still = crate::render_farm::still(scenes.path(), "split", 16, true);
    let plan = lew::parts::Plan::bands(100, 32, 2);
    let lew::parts::Plan::Bands { rows } = &plan else {
        panic!("100 rows in two bands: {plan:?}")
    };
    aws.s3
        .put_object()
        .bucket(app.bucket())
        .key("scenes/img1/split.zip")
        .body(lew::scene::load(&still).unwrap().zip.into())
        .send()
        .await
        .unwrap();
    for band in 1..=rows.len() {
        aws.sqs
            .send_message()
            .queue_url(&queue_url)
            .message_body(
                serde_json::json!({"version": 1, "job_id": "img1", "bucket": app.bucket(),
                    "key": "scenes/img1/split.zip", "part": {"band": band, "rows": rows}})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
    }
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
    // The split still came out whole, as POV-Ray renders it in one piece, 16-bit with alpha.
    assert!(logs.contains("\"event\": \"stitched\""), "{logs}");
    let stitched = scenes.path().join("stitched.png");
    let bytes = aws
        .s3
        .get_object()
        .bucket(app.bucket())
        .key("renders/img1/split.png")
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    std::fs::write(&stitched, bytes).unwrap();
    let whole = crate::render_farm::povray_alone(&still, "split.ini", &[]);
    assert!(
        crate::render_farm::same_pixels(&stitched, &whole),
        "the stitched still differs from POV-Ray's whole render"
    );

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
    let pinned = format!("{}@{digest}", repository_uri(&app).await);
    assert_eq!(report["image"], pinned.as_str());
    assert_eq!(task_image(&app).await, pinned);
}

#[test]
fn a_missing_cli_or_daemon_is_named_with_the_fix() {
    let app = App::new("");
    app.lew().arg("setup").ok();
    // --tag: built whatever ECR holds, so the CLI is needed.
    let run = app
        .lew()
        .env("PATH", "/nonexistent")
        .args(["push-image", "--tag", "t1"])
        .code(1);
    assert!(
        run.stderr.contains("`docker` is not installed"),
        "{}",
        run.stderr
    );

    let run = app
        .lew()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["push-image", "--tag", "t1"])
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

/// A folder holding only `podman` (a link to the one on PATH), to put alone on PATH, so the
/// podman push cannot have used the docker CLI.
fn only_podman(dir: &std::path::Path) -> std::path::PathBuf {
    let podman = std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("podman"))
                .find(|p| p.is_file())
        })
        .expect("podman (installed by scripts/container/env.sh)");
    std::os::unix::fs::symlink(podman, dir.join("podman")).unwrap();
    dir.to_path_buf()
}
