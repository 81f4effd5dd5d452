//! The code lew deploys, compiled into the binary so a release is self-contained: the launcher
//! Lambda (zipped in memory, byte-for-byte the same every time) and the worker's build context.

use std::io::{Cursor, Write as _};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// The launcher's source; Lambda runs `launcher.handler`.
pub const LAUNCHER_PY: &str = include_str!("../launcher/launcher.py");
pub const LAUNCHER_FILE: &str = "launcher.py";
pub const LAUNCHER_HANDLER: &str = "launcher.handler";

/// The worker's build context.
pub const WORKER_PY: &str = include_str!("../worker/worker.py");
pub const WORKER_DOCKERFILE: &str = include_str!("../worker/Dockerfile");

/// The worker build context as (file name, contents).
pub fn worker_context() -> [(&'static str, &'static str); 2] {
    [("Dockerfile", WORKER_DOCKERFILE), ("worker.py", WORKER_PY)]
}

/// The launcher deployment package: one file, a fixed timestamp and mode, so the same source
/// always gives the same bytes and the same CodeSha256 (an unchanged launcher is not uploaded).
pub fn launcher_zip() -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::DEFAULT)
        .unix_permissions(0o644);
    zip.start_file(LAUNCHER_FILE, options)
        .expect("writing to memory cannot fail");
    zip.write_all(LAUNCHER_PY.as_bytes())
        .expect("writing to memory cannot fail");
    zip.finish()
        .expect("writing to memory cannot fail")
        .into_inner()
}

/// Lambda's CodeSha256: the base64 of the package's SHA-256.
pub fn code_sha256(package: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(package))
}

/// A short hash of the worker's build context: the default image tag, so an unchanged worker
/// is not built and pushed again.
pub fn worker_source_tag() -> String {
    let mut hash = Sha256::new();
    for (name, contents) in worker_context() {
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update(contents.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("src-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn the_launcher_zip_is_stable_and_holds_only_the_source() {
        let a = launcher_zip();
        assert_eq!(a, launcher_zip(), "two builds must give the same bytes");
        let mut archive = zip::ZipArchive::new(Cursor::new(a)).unwrap();
        assert_eq!(archive.len(), 1);
        let mut file = archive.by_index(0).unwrap();
        assert_eq!(file.name().unwrap(), LAUNCHER_FILE);
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        assert_eq!(text, LAUNCHER_PY);
    }

    #[test]
    fn the_worker_tag_is_short_and_stable() {
        let tag = worker_source_tag();
        assert_eq!(tag, worker_source_tag());
        assert_eq!(tag.len(), "src-".len() + 12);
    }
}
