//! Running `lew` on a pseudo-terminal, as a user at a terminal does: util-linux `script` gives
//! it one, typing what the test says. stdout and stderr then arrive together, as on a screen.

use std::ffi::OsStr;
use std::io::Write as _;
use std::process::{Command, Stdio};

use super::{Lew, Run};

/// `text` quoted for `sh`.
fn quote(text: &OsStr) -> String {
    format!("'{}'", text.to_string_lossy().replace('\'', r"'\''"))
}

impl Lew {
    /// Runs it on a 100-column pseudo-terminal with `TERM=xterm-256color`, typing `input`;
    /// `stdout` holds everything the terminal showed (line ends as `\n`), `stderr` is empty.
    pub fn terminal(self, input: &str) -> Run {
        let mut line = "stty cols 100 rows 40; exec".to_string();
        for part in std::iter::once(self.cmd.get_program()).chain(self.cmd.get_args()) {
            line.push(' ');
            line.push_str(&quote(part));
        }
        let mut script = Command::new("script");
        script.args(["-qec", &line, "/dev/null"]);
        if let Some(dir) = self.cmd.get_current_dir() {
            script.current_dir(dir);
        }
        for (key, value) in self.cmd.get_envs() {
            match value {
                Some(v) => script.env(key, v),
                None => script.env_remove(key),
            };
        }
        script
            .env("TERM", "xterm-256color")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = script.spawn().expect("cannot start util-linux `script`");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n"),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Lew {
    /// Runs it in a 100×60 tmux window and returns the screen as it stands when lew has exited
    /// (`stdout`; no colour), what a user sees after live progress has been redrawn and
    /// cleared. The exit code is read from a marker line printed after lew.
    pub fn screen(self) -> Run {
        static SESSIONS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let socket = format!(
            "lew-test-{}-{}",
            std::process::id(),
            SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut line = String::new();
        if let Some(dir) = self.cmd.get_current_dir() {
            line.push_str(&format!("cd {} && ", quote(dir.as_os_str())));
        }
        line.push_str("env");
        // env's options (-u) before its assignments.
        for (key, value) in self.cmd.get_envs() {
            if value.is_none() {
                line.push_str(&format!(" -u {}", key.to_string_lossy()));
            }
        }
        for (key, value) in self.cmd.get_envs() {
            if let Some(v) = value {
                line.push_str(&format!(" {}={}", key.to_string_lossy(), quote(v)));
            }
        }
        for part in std::iter::once(self.cmd.get_program()).chain(self.cmd.get_args()) {
            line.push(' ');
            line.push_str(&quote(part));
        }
        line.push_str("; echo LEW-EXIT=$?; sleep 600");
        let tmux = |args: &[&str]| {
            Command::new("tmux")
                .args(["-L", &socket, "-f", "/dev/null"])
                .args(args)
                .output()
                .expect("cannot run tmux")
        };
        let started = tmux(&[
            "new-session",
            "-d",
            "-x",
            "100",
            "-y",
            "60",
            "sh",
            "-c",
            &line,
        ]);
        assert!(started.status.success(), "{started:?}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let screen = loop {
            let shown = tmux(&["capture-pane", "-p"]);
            let text = String::from_utf8_lossy(&shown.stdout).into_owned();
            if text.contains("LEW-EXIT=") || std::time::Instant::now() > deadline {
                break text;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        tmux(&["kill-server"]);
        let code = screen
            .lines()
            .find_map(|l| l.strip_prefix("LEW-EXIT="))
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or_else(|| panic!("lew did not finish within 2 minutes:\n{screen}"));
        let before: Vec<&str> = screen
            .lines()
            .take_while(|l| !l.starts_with("LEW-EXIT="))
            .collect();
        Run {
            code,
            stdout: before.join("\n"),
            stderr: String::new(),
        }
    }
}
