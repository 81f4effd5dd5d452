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
    if std::env::var_os("LEW_POVRAY").is_some() {
        return Err(crate::error::UsageError::new(format!(
            "LEW_POVRAY={name}: no such program, and it names the povray --local renders \
             with; point it at POV-Ray 3.7, or unset it to use the povray on PATH"
        ))
        .into());
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

/// What one local POV-Ray run writes.
pub enum Output<'a> {
    /// The image (or one band of it, black elsewhere) to this file.
    Image {
        target: &'a Path,
        rows: Option<(u64, u64)>,
    },
    /// Frames `first..=last` of an animation, into `folder` as `<name><n>.png`.
    Frames {
        folder: &'a Path,
        first: i64,
        last: i64,
    },
}

/// A run of frames that stopped at a frame: what was written, and why that frame failed.
pub struct FramesFailure {
    pub written: Vec<i64>,
    pub frame: i64,
    pub failure: Failure,
}

/// Renders one part of a scene in a private temporary folder, as the worker does: the scene's
/// ini, then lew's own ini that fixes display, output format and place, and restates the size
/// and frames that were checked (an .ini the scene's .ini includes could ask for more). The
/// timeout is for each frame.
pub async fn render(
    povray: &Path,
    scene: &Scene,
    output: Output<'_>,
    threads: usize,
    timeout: Duration,
) -> Result<Vec<i64>, FramesFailure> {
    let frames = match output {
        Output::Frames { first, last, .. } => Some((first, last)),
        Output::Image { .. } => None,
    };
    let whole = |failure: Failure| FramesFailure {
        written: Vec::new(),
        frame: frames.map_or(1, |f| f.0),
        failure,
    };
    let fail = |reason: String| Failure {
        reason,
        output: None,
    };
    let work =
        tempfile::tempdir().map_err(|e| whole(fail(format!("cannot make a work folder: {e}"))))?;
    let root = work.path().join("scene");
    std::fs::create_dir(&root).map_err(|e| whole(fail(e.to_string())))?;
    let ini = scene::extract(scene, &root).map_err(|e| whole(fail(e.0)))?;
    let out = work.path().join("out");
    std::fs::create_dir(&out).map_err(|e| whole(fail(e.to_string())))?;
    let own_ini = work.path().join("lew-local.ini");
    std::fs::write(&own_ini, own_ini_text(scene, &output, &root, &out))
        .map_err(|e| whole(fail(e.to_string())))?;
    let count = frames.map_or(1, |(a, b)| b - a + 1);
    let run = run(
        povray,
        &ini,
        &own_ini,
        &root,
        work.path(),
        threads,
        timeout * count as u32,
    )
    .await
    .map_err(whole)?;
    match output {
        Output::Image { target, .. } => {
            let image = out.join("render.png");
            if !run.success || !image.is_file() {
                return Err(whole(run.failure(timeout)));
            }
            std::fs::copy(&image, target)
                .map_err(|e| whole(fail(format!("cannot write {}: {e}", target.display()))))?;
            Ok(Vec::new())
        }
        Output::Frames {
            folder,
            first,
            last,
        } => {
            let digits = scene.settings.digits();
            let mut written = Vec::new();
            for n in first..=last {
                let from = out.join(format!("frame{n:0digits$}.png"));
                if !from.is_file() {
                    return Err(FramesFailure {
                        written,
                        frame: n,
                        failure: run.failure(timeout),
                    });
                }
                let to = folder.join(format!("{}{n:0digits$}.png", scene.name));
                std::fs::copy(&from, &to).map_err(|e| FramesFailure {
                    written: written.clone(),
                    frame: n,
                    failure: fail(format!("cannot write {}: {e}", to.display())),
                })?;
                written.push(n);
            }
            Ok(written)
        }
    }
}

/// lew's own .ini, given after the scene's.
fn own_ini_text(scene: &Scene, output: &Output<'_>, root: &Path, out: &Path) -> String {
    let s = &scene.settings;
    let mut lines = vec![
        format!("Width={}", s.width),
        format!("Height={}", s.height),
        "Display=off".to_string(),
        "Pause_When_Done=off".into(),
        "Output_To_File=on".into(),
        "Output_File_Type=N".into(),
    ];
    match output {
        Output::Image { rows, .. } => {
            lines.push(format!(
                "Output_File_Name=\"{}\"",
                out.join("render.png").display()
            ));
            lines.extend(["Initial_Frame=1".into(), "Final_Frame=1".into()]);
            if let Some((start, end)) = rows {
                lines.extend([format!("Start_Row={start}"), format!("End_Row={end}")]);
            }
        }
        Output::Frames { first, last, .. } => {
            // POV-Ray numbers the files itself: frame07.png.
            lines.push(format!(
                "Output_File_Name=\"{}\"",
                out.join("frame.png").display()
            ));
            lines.extend([
                format!("Initial_Frame={}", s.initial_frame),
                format!("Final_Frame={}", s.final_frame),
                format!("Subset_Start_Frame={first}"),
                format!("Subset_End_Frame={last}"),
            ]);
        }
    }
    lines.push(format!("Library_Path=\"{}\"", root.display()));
    if Path::new(SYSTEM_INCLUDES).is_dir() {
        lines.push(format!("Library_Path=\"{SYSTEM_INCLUDES}\""));
    }
    lines.join("\n") + "\n"
}

/// How a POV-Ray process ended.
struct Run {
    success: bool,
    timed_out: bool,
    code: Option<i32>,
    text: String,
}

impl Run {
    fn failure(&self, timeout: Duration) -> Failure {
        if self.timed_out {
            return Failure {
                reason: format!(
                    "render timed out after {} s a frame (worker.render_timeout_s)",
                    timeout.as_secs()
                ),
                output: Some(self.text.clone()),
            };
        }
        let reason = scene::povray_error(&self.text).unwrap_or_else(|| match self.code {
            Some(0) => "POV-Ray finished without writing the image".to_string(),
            Some(code) => format!("POV-Ray failed (exit status {code})"),
            None => "POV-Ray was killed by a signal".to_string(),
        });
        Failure {
            reason,
            output: Some(self.text.clone()),
        }
    }
}

async fn run(
    povray: &Path,
    ini: &Path,
    own_ini: &Path,
    root: &Path,
    home: &Path,
    threads: usize,
    timeout: Duration,
) -> Result<Run, Failure> {
    let ini_name = ini
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let child = tokio::process::Command::new(povray)
        .arg(format!("\"./{ini_name}\""))
        .arg(format!("\"{}\"", own_ini.display()))
        .arg(format!("+WT{threads}"))
        .current_dir(ini.parent().unwrap_or(root))
        // A scene can read its environment (`#read` of /proc/self/environ): give it none.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Failure {
            reason: format!("cannot run {}: {e}", povray.display()),
            output: None,
        })?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => Ok(Run {
            success: output.status.success(),
            timed_out: false,
            code: output.status.code(),
            text: String::from_utf8_lossy(&output.stderr).into_owned()
                + &String::from_utf8_lossy(&output.stdout),
        }),
        Ok(Err(e)) => Err(Failure {
            reason: format!("POV-Ray failed: {e}"),
            output: None,
        }),
        Err(_) => Ok(Run {
            success: false,
            timed_out: true,
            code: None,
            text: String::new(),
        }),
    }
}
