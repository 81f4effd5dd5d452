//! `lew render --video FILE`: an animation's frames assembled into a video by a local `ffmpeg`
//! (or the one `LEW_FFMPEG` names). The format follows the file's extension: `.mp4` (H.264,
//! 4:2:0, the widest support), `.webm` (VP9) or `.gif` (with a palette made from the frames).
//! Without ffmpeg the frames are still there; lew says how to make the video later.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context as _, Result, bail};

/// The extensions `--video` takes.
pub const FORMATS: &[&str] = &["mp4", "webm", "gif"];

/// Whether `path` names a format lew can make; the error says which it can.
pub fn check_format(path: &Path) -> Result<(), String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if FORMATS.contains(&ext.as_str()) {
        Ok(())
    } else {
        Err(format!(
            "--video {}: lew makes .mp4, .webm or .gif videos; name the file with one of these",
            path.display()
        ))
    }
}

/// The local ffmpeg, if there is one.
pub fn find() -> Option<PathBuf> {
    let name = std::env::var("LEW_FFMPEG").unwrap_or_else(|_| "ffmpeg".into());
    let candidate = Path::new(&name);
    if candidate.components().count() > 1 {
        return candidate.is_file().then(|| candidate.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(&name))
        .find(|p| p.is_file())
}

/// What to tell a user without ffmpeg, naming where the frames are.
pub fn missing(frames: &Path) -> String {
    format!(
        "ffmpeg is not installed (or not on PATH), so no video was made; the frames are in {}: \
         install ffmpeg (Debian/Ubuntu: `sudo apt-get install ffmpeg`; macOS: `brew install \
         ffmpeg`) and render again with --video, or assemble them with ffmpeg yourself",
        frames.display()
    )
}

/// The frames of one animation, as `lew render` wrote them.
pub struct Frames<'a> {
    pub folder: &'a Path,
    pub name: &'a str,
    pub digits: usize,
    pub first: i64,
}

/// Makes `video` from `frames` at `fps` frames a second.
pub async fn assemble(ffmpeg: &Path, frames: &Frames<'_>, fps: u32, video: &Path) -> Result<()> {
    // ffmpeg's image sequence pattern: `%` in the name itself must be doubled.
    let pattern = frames.folder.join(format!(
        "{}%0{}d.png",
        frames.name.replace('%', "%%"),
        frames.digits
    ));
    let mut command = tokio::process::Command::new(ffmpeg);
    command
        .args(["-nostdin", "-y", "-loglevel", "error"])
        .args(["-framerate", &fps.to_string()])
        .args(["-start_number", &frames.first.to_string()])
        .arg("-i")
        .arg(&pattern);
    let ext = video
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        // H.264 in 4:2:0 needs even sides.
        Some("mp4") => command.args([
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-vf",
            "pad=ceil(iw/2)*2:ceil(ih/2)*2",
        ]),
        Some("webm") => command.args([
            "-c:v",
            "libvpx-vp9",
            "-pix_fmt",
            "yuv420p",
            "-b:v",
            "0",
            "-crf",
            "32",
        ]),
        Some("gif") => command.args(["-vf", "split[a][b];[a]palettegen[p];[b][p]paletteuse"]),
        _ => bail!("{} is not an .mp4, .webm or .gif file", video.display()),
    };
    let output = command
        .arg(video)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {}", ffmpeg.display()))?;
    if !output.status.success() {
        bail!(
            "ffmpeg could not make {}: {}",
            video.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
