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
