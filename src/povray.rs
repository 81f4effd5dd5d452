//! POV-Ray on this machine, for `lew render --local`: finding it, and rendering one scene the
//! way the worker does (a private work folder, the scene's `.ini` and then lew's own, which
//! fixes display, output format, place and the size that was checked), without the worker's
//! confinement.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::scene::{self, Scene};

/// Where Debian's POV-Ray keeps its standard include files.
const SYSTEM_INCLUDES: &str = "/usr/share/povray-3.7/include";

/// The local povray, or a usage error saying how to install it.
pub fn find() -> Result<PathBuf> {
    let name = std::env::var("LEW_POVRAY").unwrap_or_else(|_| "povray".into());
    let candidate = Path::new(&name);
    if candidate.components().count() > 1 {
        if candidate.is_file() {
            return Ok(candidate.to_path_buf());
        }
    } else if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(&name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    bail!(
        "{name} is not installed (or not on PATH), and --local renders with it: install \
         POV-Ray 3.7 (Debian/Ubuntu: `sudo apt-get install povray povray-includes`; macOS: \
         `brew install povray`), or render in the cloud without --local"
    )
}

/// Why a local render failed: the reason, and POV-Ray's output when it ran.
pub struct Failure {
    pub reason: String,
    pub output: Option<String>,
}

/// Renders one scene in a private temporary folder, as the worker does: the scene's ini, then
/// lew's own ini that fixes display, output format and place.
pub async fn render(
    povray: &Path,
    scene: &Scene,
    target: &Path,
    threads: usize,
    timeout: Duration,
) -> Result<(), Failure> {
    let fail = |reason: String| Failure {
        reason,
        output: None,
    };
    let work = tempfile::tempdir().map_err(|e| fail(format!("cannot make a work folder: {e}")))?;
    let root = work.path().join("scene");
    std::fs::create_dir(&root).map_err(|e| fail(e.to_string()))?;
    let ini = scene::extract(scene, &root).map_err(|e| fail(e.0))?;
    let image = work.path().join("render.png");
    let own_ini = work.path().join("lew-local.ini");
    // Restate the size that was checked: an .ini the scene's .ini includes could ask for more.
    let (width, height) = scene::declared_size(&String::from_utf8_lossy(
        &std::fs::read(&ini).map_err(|e| fail(e.to_string()))?,
    ));
    let mut lines = vec![
        format!("Width={width}"),
        format!("Height={height}"),
        "Display=off".to_string(),
        "Pause_When_Done=off".into(),
        "Output_To_File=on".into(),
        "Output_File_Type=N".into(),
        format!("Output_File_Name=\"{}\"", image.display()),
        "Initial_Frame=1".into(),
        "Final_Frame=1".into(),
        format!("Library_Path=\"{}\"", root.display()),
    ];
    if Path::new(SYSTEM_INCLUDES).is_dir() {
        lines.push(format!("Library_Path=\"{SYSTEM_INCLUDES}\""));
    }
    std::fs::write(&own_ini, lines.join("\n") + "\n").map_err(|e| fail(e.to_string()))?;
    let ini_name = ini
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let child = tokio::process::Command::new(povray)
        .arg(format!("\"./{ini_name}\""))
        .arg(format!("\"{}\"", own_ini.display()))
        .arg(format!("+WT{threads}"))
        .current_dir(ini.parent().unwrap_or(&root))
        // A scene can read its environment (`#read` of /proc/self/environ): give it none.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot run {}: {e}", povray.display())))?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(out) => out.map_err(|e| fail(format!("POV-Ray failed: {e}")))?,
        Err(_) => {
            return Err(fail(format!(
                "render timed out after {} s (worker.render_timeout_s)",
                timeout.as_secs()
            )));
        }
    };
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !image.is_file() {
        let reason = scene::povray_error(&text).unwrap_or_else(|| match output.status.code() {
            Some(code) => format!("POV-Ray failed (exit status {code})"),
            None => "POV-Ray was killed by a signal".to_string(),
        });
        return Err(Failure {
            reason,
            output: Some(text),
        });
    }
    std::fs::copy(&image, target)
        .map_err(|e| fail(format!("cannot write {}: {e}", target.display())))?;
    Ok(())
}
