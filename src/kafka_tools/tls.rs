//! TLS in front of a broker for `bench serve --tls`: `socat` terminates TLS on a port of its own
//! and relays each connection to tansu (which speaks no TLS), with a throwaway CA and a server
//! certificate for 127.0.0.1 made by the `openssl` CLI. Both are Debian packages (`socat`,
//! `openssl`); killed on `Drop`.
//!
//! The relay is a C process beside the broker, as a TLS-terminating broker or proxy would be: what
//! the benchmark measures is what TLS costs the clients (paritygate and the bare consumer) and
//! the machine, on loopback.

use super::{free_port, Endpoint};
use anyhow::{bail, Context};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct TlsFront {
    child: Child,
    /// The TLS port clients connect to (and the broker advertises).
    pub port: u16,
    /// The CA clients trust (`ssl.ca.location`).
    pub ca: PathBuf,
}

impl TlsFront {
    /// Certificates into `dir`, then `socat` listening with TLS on a free port (before the broker
    /// starts, so the broker can advertise it) and relaying to `127.0.0.1:inner_port`.
    pub fn start(dir: &Path, inner_port: u16) -> anyhow::Result<TlsFront> {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        let (ca, cert, key) = (
            dir.join("ca.crt"),
            dir.join("server.crt"),
            dir.join("server.key"),
        );
        let ca_key = dir.join("ca.key");
        let csr = dir.join("server.csr");
        let ext = dir.join("server.ext");
        std::fs::write(&ext, "subjectAltName = IP:127.0.0.1, DNS:localhost\n")?;
        let path = |p: &PathBuf| p.display().to_string();
        openssl(&[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=paritygate bench CA",
            "-keyout",
            &path(&ca_key),
            "-out",
            &path(&ca),
        ])
        .run()?;
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-keyout", &path(&key), "-out", &path(&csr)])
        .run()?;
        openssl(&["x509", "-req", "-days", "1", "-CAcreateserial"])
            .args([
                "-in",
                &path(&csr),
                "-CA",
                &path(&ca),
                "-CAkey",
                &path(&ca_key),
            ])
            .args(["-extfile", &path(&ext), "-out", &path(&cert)])
            .run()?;
        let port = free_port()?;
        let listen = format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
            cert.display(),
            key.display()
        );
        let child = Command::new("socat")
            .args([listen, format!("TCP:127.0.0.1:{inner_port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn socat (Debian package `socat`)")?;
        let mut front = TlsFront { child, port, ca };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = front.child.try_wait()? {
                bail!("socat exited before listening: {status}");
            }
            if Instant::now() > deadline {
                bail!("socat is not listening on {port} after 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(front)
    }

    /// The relay's process id (its forked relays are its children).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What a client needs to connect through the front.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            addr: format!("127.0.0.1:{}", self.port),
            properties: vec![
                ("security.protocol".into(), "SSL".into()),
                ("ssl.ca.location".into(), self.ca.display().to_string()),
            ],
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An `openssl` invocation that fails with its output.
struct Openssl(Command);

fn openssl(args: &[&str]) -> Openssl {
    let mut command = Command::new("openssl");
    command.args(args);
    Openssl(command)
}

impl Openssl {
    fn args<'a>(mut self, args: impl IntoIterator<Item = &'a str>) -> Openssl {
        self.0.args(args);
        self
    }

    fn run(mut self) -> anyhow::Result<()> {
        let out = self
            .0
            .output()
            .context("run openssl (Debian package `openssl`)")?;
        if !out.status.success() {
            bail!("openssl failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }
}
