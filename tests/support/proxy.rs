//! The project's loopback proxy (scripts/proxy/proxy.py) in front of moto, adding latency so
//! that steps take as long as they would against AWS.

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};

pub struct Proxy {
    pub url: String,
    child: Child,
}

impl Proxy {
    /// A proxy to `upstream` adding `latency_ms` to every request.
    pub fn start(upstream: &str, latency_ms: u32) -> Proxy {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new("python3")
            .arg(repo.join("scripts/proxy/proxy.py"))
            .args(["--upstream", upstream, "--port", "0"])
            .args(["--latency-ms", &latency_ms.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start scripts/proxy/proxy.py");
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = serde_json::from_str::<serde_json::Value>(&first)
            .unwrap_or_else(|e| panic!("the proxy said {first:?}: {e}"))["port"]
            .as_u64()
            .unwrap();
        Proxy {
            url: format!("http://127.0.0.1:{port}"),
            child,
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
