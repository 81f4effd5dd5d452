//! Downloads as `lew render` makes them, against moto: what lands on disk.

use crate::support::{App, foreign, unique};

/// A downloaded image gets the permissions any new file of the user gets (0666 less the umask),
/// not the owner-only 0600 of a temporary file.
#[cfg(unix)]
#[tokio::test]
async fn a_downloaded_file_gets_the_users_normal_permissions() {
    use std::os::unix::fs::PermissionsExt as _;

    let app = App::new("");
    let aws = app.aws().await;
    let bucket = format!("lew-dl-{}", unique());
    foreign::bucket(&aws, &bucket).await;
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key("renders/x/scene.png")
        .body(b"not really a png".to_vec().into())
        .send()
        .await
        .unwrap();
    let dest = app.path().join("scene.png");
    let progress = lew::progress::Progress::hidden();
    lew::transfer::download(
        &aws.s3,
        &progress,
        &bucket,
        "renders/x/scene.png",
        &dest,
        false,
    )
    .await
    .unwrap();
    // What this process's umask makes of a new file: the user's normal permissions.
    let normal = app.path().join("normal");
    std::fs::write(&normal, b"").unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        format!("{:o}", mode(&dest)),
        format!("{:o}", mode(&normal)),
        "the download's mode differs from a new file's"
    );
    assert_eq!(std::fs::read(&dest).unwrap(), b"not really a png");
}
