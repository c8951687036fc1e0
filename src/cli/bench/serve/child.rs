//! `paritygate serve` as a child process (so its peak memory is its own): start it, ask its HTTP
//! API for service status, read its `VmHWM`, stop it with SIGTERM.

use anyhow::{bail, Context};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `paritygate serve`; killed on `Drop` if not stopped.
#[derive(Debug)]
pub struct ServeChild {
    child: Child,
    addr: String,
}

impl ServeChild {
    /// Run this executable's `serve --config <config>`, logs to `log`, and wait for its address.
    pub fn start(config: &Path, log: &Path) -> anyhow::Result<ServeChild> {
        let exe = std::env::current_exe()?;
        let log = std::fs::File::create(log).with_context(|| format!("{}", log.display()))?;
        let mut command = Command::new(exe);
        command
            .arg("serve")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        // The bench's config is the whole truth: no override from the caller's environment.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PARITYGATE_") {
                command.env_remove(name);
            }
        }
        // Its log filter: `PARITYGATE_BENCH_SERVE_LOG` when diagnosing (e.g.
        // `info,paritygate::serve::evaluate=debug` shows each evaluation round), else warnings.
        let filter = std::env::var("PARITYGATE_BENCH_SERVE_LOG").unwrap_or_else(|_| "warn".into());
        command.env("PARITYGATE_LOG", filter);
        let mut child = command.spawn().context("spawn paritygate serve")?;
        let stdout = child.stdout.take().context("no stdout")?;
        // The first line names the bound address (`[http] listen` uses port 0).
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(addr) = line.trim().strip_prefix("listening on http://") else {
            let _ = child.kill();
            bail!("serve did not start: {line:?} (see its log)");
        };
        Ok(ServeChild {
            addr: addr.to_owned(),
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `GET path` as JSON (`None` while the service answers anything but 200, e.g. 404 before
    /// its first evaluation).
    pub fn get(&self, path: &str) -> anyhow::Result<Option<Value>> {
        match self.get_text(path)? {
            Some(body) => Ok(Some(serde_json::from_str(&body)?)),
            None => Ok(None),
        }
    }

    /// `GET path`: the body of a 200 answer.
    pub fn get_text(&self, path: &str) -> anyhow::Result<Option<String>> {
        let mut stream = TcpStream::connect(&self.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let Some(split) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
            bail!("malformed HTTP response from serve");
        };
        if !response.starts_with(b"HTTP/1.1 200") {
            return Ok(None);
        }
        Ok(Some(
            String::from_utf8_lossy(&response[split + 4..]).into_owned(),
        ))
    }

    /// Peak resident set size so far (Linux `VmHWM` of the child).
    pub fn peak_rss_bytes(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .context("no VmHWM in the child's /proc status")?;
        Ok(kib * 1024)
    }

    /// SIGTERM (the service drains and checkpoints), then SIGKILL after `grace`.
    pub fn stop(mut self, grace: Duration) -> anyhow::Result<()> {
        // `kill(1)` rather than libc: the crate denies unsafe code.
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    eprintln!("serve exited with {status} (see its log)");
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("serve did not stop within {grace:?}; killing it");
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
