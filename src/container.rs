//! Driving the container CLI (`docker` or `podman`) to build, log in and push the worker image.
//!
//! The registry password only ever travels on the CLI's stdin (`login --password-stdin`); it is
//! never an argument (visible in the process list) and never printed.

use std::path::Path;
use std::process::Stdio;

use anyhow::{Context as _, Result, bail};
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

/// The container CLI lew runs.
pub struct Cli {
    pub program: String,
    verbose: bool,
}

/// What a finished CLI command printed.
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

impl Cli {
    pub fn new(program: &str, verbose: bool) -> Cli {
        Cli {
            program: program.to_string(),
            verbose,
        }
    }

    /// Runs the CLI with `args`, feeding `stdin` if given; an error carries its stderr.
    async fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Output> {
        let mut cmd = Command::new(&self.program);
        cmd.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "`{}` is not installed (or not on PATH): install it, or set worker.container_cli \
                 in lew.toml to \"docker\" or \"podman\"",
                self.program
            ),
            Err(e) => return Err(e).with_context(|| format!("cannot run {}", self.program)),
        };
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().context("no stdin pipe")?;
            pipe.write_all(input).await?;
            drop(pipe);
        }
        let out = child
            .wait_with_output()
            .await
            .with_context(|| format!("{} {} did not finish", self.program, args[0]))?;
        let output = Output {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        if self.verbose {
            eprint!("{}{}", output.stdout, output.stderr);
        }
        if !out.status.success() {
            bail!(
                "`{} {}` failed ({}): {}",
                self.program,
                args[0],
                out.status,
                last_lines(&output.stderr, 8)
            );
        }
        Ok(output)
    }

    /// Checks that the CLI can reach its daemon (docker) or service (podman), with the fix.
    pub async fn check_daemon(&self) -> Result<()> {
        match self.run(&["version"], None).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let text = format!("{e:#}");
                if text.contains("Cannot connect to the Docker daemon")
                    || text.contains("Is the docker daemon running")
                {
                    bail!(
                        "the Docker daemon is not running (or DOCKER_HOST points nowhere): start \
                         Docker (Docker Desktop, or `sudo systemctl start docker`), or set \
                         worker.container_cli = \"podman\""
                    )
                }
                if text.contains("unable to connect to Podman") {
                    bail!(
                        "podman cannot reach its service: start it (`podman machine start` on \
                         macOS and Windows), or set worker.container_cli = \"docker\""
                    )
                }
                Err(e)
            }
        }
    }

    /// Builds `context` as `image`, for the platform Fargate runs (linux/amd64).
    pub async fn build(&self, context: &Path, image: &str) -> Result<()> {
        let context = context.to_string_lossy();
        let mut args = vec!["build", "--tag", image];
        // Only needed (and only then passed, as the legacy builder may not know it) when this
        // machine is not x86_64, e.g. an Apple silicon laptop.
        if std::env::consts::ARCH != "x86_64" {
            args.extend(["--platform", "linux/amd64"]);
        }
        args.push(&context);
        self.run(&args, None).await.map(|_| ())
    }

    /// `login --password-stdin`: the password goes to the CLI's stdin, never into argv.
    pub async fn login(&self, registry: &str, username: &str, password: &str) -> Result<()> {
        self.run(
            &[
                "login",
                "--username",
                username,
                "--password-stdin",
                registry,
            ],
            Some(password.as_bytes()),
        )
        .await
        .map(|_| ())
        .with_context(|| format!("cannot log in to {registry}"))
    }

    /// Pushes `image` and returns the digest the registry stored (from the push output).
    pub async fn push(&self, image: &str) -> Result<Option<String>> {
        let out = self.run(&["push", image], None).await?;
        Ok(pushed_digest(&out.stdout).or_else(|| pushed_digest(&out.stderr)))
    }
}

/// The `digest: sha256:...` the docker and podman CLIs print at the end of a push. (Local
/// `RepoDigests` are not used: podman converts the manifest while pushing, so its local
/// digest differs from the registry's.)
pub fn pushed_digest(output: &str) -> Option<String> {
    output.lines().rev().find_map(|line| {
        let at = line.find("digest: sha256:")?;
        let hex: String = line[at + "digest: sha256:".len()..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect();
        (hex.len() == 64).then(|| format!("sha256:{hex}"))
    })
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_from_push_output() {
        let out = "The push refers to repository [localhost:5000/x]\n\
                   5f70bf18a086: Pushed\n\
                   tag1: digest: sha256:80adee5c9bd0d4b1cbc0a6d4f6b6a7c9c7bd5e0e4e2c1f8b0a9d8c7b6a5f4e3d size: 591\n";
        assert_eq!(
            pushed_digest(out).unwrap(),
            "sha256:80adee5c9bd0d4b1cbc0a6d4f6b6a7c9c7bd5e0e4e2c1f8b0a9d8c7b6a5f4e3d"
        );
        assert_eq!(pushed_digest("unauthorized: authentication required"), None);
    }
}
