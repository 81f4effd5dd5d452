//! Moving scenes and renders between this machine and the bucket, with byte progress bars.
//!
//! Large uploads go in parts (multipart), so a progress bar moves and a failed part is retried
//! alone; an upload that fails is aborted so no invisible parts are left costing storage.

use std::path::Path;

use anyhow::{Context as _, Result};
use aws_sdk_s3::error::ProvideErrorMetadata as _;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tokio::io::AsyncWriteExt as _;

use crate::progress::Progress;

/// Uploads above this size go in parts (so the bar moves; a smaller one takes a moment).
pub const MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;
/// The size of each part (S3's minimum is 5 MiB; the AWS CLI's default is 8 MiB).
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// Uploads `data` to `s3://bucket/key` with a progress bar labelled `label`, with user
/// `metadata` (`x-amz-meta-*`).
pub async fn upload(
    s3: &aws_sdk_s3::Client,
    progress: &Progress,
    bucket: &str,
    key: &str,
    data: &[u8],
    label: &str,
    metadata: &[(&str, String)],
) -> Result<()> {
    let metadata: Option<std::collections::HashMap<String, String>> =
        (!metadata.is_empty()).then(|| {
            metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        });
    let bar = progress.bytes(label.to_string(), data.len() as u64);
    if data.len() <= MULTIPART_THRESHOLD {
        // Every upload names a new key. "Only if absent" makes the SDK's retry of an upload
        // whose answer was lost a harmless 412 instead of a second object-created event, which
        // would queue (and render) the scene twice.
        let put = s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/zip")
            .set_metadata(metadata)
            .if_none_match("*")
            .body(ByteStream::from(data.to_vec()))
            .send()
            .await;
        bar.finish_and_clear();
        return match put {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("PreconditionFailed") => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot upload s3://{bucket}/{key}")),
        };
    }
    let upload_id = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .content_type("application/zip")
        .set_metadata(metadata)
        .send()
        .await
        .with_context(|| format!("cannot start uploading s3://{bucket}/{key}"))?
        .upload_id
        .context("S3 returned no upload id")?;
    let result = async {
        let mut parts = Vec::new();
        for (i, chunk) in data.chunks(PART_SIZE).enumerate() {
            let number = i as i32 + 1;
            let out = s3
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(&upload_id)
                .part_number(number)
                .body(ByteStream::from(chunk.to_vec()))
                .send()
                .await
                .with_context(|| format!("cannot upload part {number} of s3://{bucket}/{key}"))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag)
                    .build(),
            );
            bar.inc(chunk.len() as u64);
        }
        let completed = s3
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .if_none_match("*")
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        match completed {
            Ok(_) => anyhow::Ok(()),
            // A retry of a completion whose answer was lost: the object is there.
            Err(e)
                if matches!(e.code(), Some("PreconditionFailed" | "NoSuchUpload"))
                    && s3
                        .head_object()
                        .bucket(bucket)
                        .key(key)
                        .send()
                        .await
                        .is_ok() =>
            {
                Ok(())
            }
            Err(e) => {
                Err(e).with_context(|| format!("cannot finish uploading s3://{bucket}/{key}"))
            }
        }
    }
    .await;
    bar.finish_and_clear();
    if result.is_err() {
        // Best effort: the error that matters is the one already in hand.
        let _ = s3
            .abort_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .send()
            .await;
    }
    result
}

/// Downloads `s3://bucket/key` to `dest` with a progress bar; the file appears only when it is
/// complete (written to a temporary file of its own in the same folder, then renamed). Without
/// `overwrite`, a file that appeared at `dest` meanwhile is kept and the download is an error.
pub async fn download(
    s3: &aws_sdk_s3::Client,
    progress: &Progress,
    bucket: &str,
    key: &str,
    dest: &Path,
    overwrite: bool,
) -> Result<u64> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .with_context(|| format!("cannot download s3://{bucket}/{key}"))?;
    let total = out.content_length.unwrap_or(0).max(0) as u64;
    let label = dest
        .file_name()
        .map_or_else(|| key.to_string(), |n| n.to_string_lossy().into_owned());
    let bar = progress.bytes(label, total);
    let folder = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new();
    temp.prefix(".lew-download-").suffix(".part");
    // A downloaded image is the user's file like any other: 0666 less the umask (0644 under
    // the usual 022), not the 0600 a temporary file gets by default.
    #[cfg(unix)]
    temp.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let (file, partial) = temp
        .tempfile_in(folder)
        .with_context(|| format!("cannot write in {}", folder.display()))?
        .into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let mut body = out.body;
    let mut written = 0u64;
    let result = async {
        while let Some(chunk) = body
            .try_next()
            .await
            .with_context(|| format!("download of s3://{bucket}/{key} broke off"))?
        {
            file.write_all(&chunk).await?;
            written += chunk.len() as u64;
            bar.inc(chunk.len() as u64);
        }
        file.flush().await?;
        anyhow::Ok(())
    }
    .await;
    bar.finish_and_clear();
    drop(file);
    result?; // dropping `partial` removes the temporary file
    let kept = if overwrite {
        partial.persist(dest)
    } else {
        partial.persist_noclobber(dest)
    };
    kept.map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", dest.display()))?;
    Ok(written)
}
