//! Secured clusters for the connectivity tests: TLS, mutual TLS and SASL (PLAIN, SCRAM-SHA-256,
//! SCRAM-SHA-512) in front of tansu.
//!
//! tansu 0.6 parses `--cert`/`--key` but serves plaintext, and its SASL keeps no users, so the
//! tests put `tests/tools/kafka_front.py` before it: it terminates TLS (Python's `ssl`, OpenSSL),
//! answers SaslHandshake/SaslAuthenticate itself (SCRAM by the `scramp` library) and then pipes
//! the connection to tansu, which advertises the front's address. The certificates are made per
//! test with the `openssl` CLI: a CA, a server certificate for `localhost` and 127.0.0.1, a client
//! certificate, and a second CA nobody trusts.

use super::{free_port, program, root};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const USER: &str = "paritygate";
pub const PASSWORD: &str = "correct-horse-battery-staple";

/// What the front requires of clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// `security.protocol = SSL`.
    Tls,
    /// `SSL` with a client certificate signed by the CA.
    MutualTls,
    /// `SASL_PLAINTEXT` with this mechanism.
    Sasl(&'static str),
    /// `SASL_SSL` with this mechanism.
    SaslTls(&'static str),
}

impl Protection {
    fn tls(self) -> bool {
        !matches!(self, Protection::Sasl(_))
    }

    fn mechanism(self) -> Option<&'static str> {
        match self {
            Protection::Sasl(m) | Protection::SaslTls(m) => Some(m),
            _ => None,
        }
    }

    pub fn protocol(self) -> &'static str {
        match self {
            Protection::Tls | Protection::MutualTls => "SSL",
            Protection::Sasl(_) => "SASL_PLAINTEXT",
            Protection::SaslTls(_) => "SASL_SSL",
        }
    }
}

/// Throwaway certificates (PEM), removed with the directory.
#[derive(Debug)]
pub struct Certs {
    _dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed nothing here: trusting it instead of `ca` must fail verification.
    pub other_ca: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (Debian: apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Certs {
    pub fn generate() -> Certs {
        let dir = tempfile::tempdir().expect("cert dir");
        let d = dir.path();
        for ca in ["ca", "other-ca"] {
            openssl(
                d,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN=paritygate test {ca}"),
                    "-keyout",
                    &format!("{ca}.key"),
                    "-out",
                    &format!("{ca}.pem"),
                ],
            );
        }
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName = DNS:localhost, IP:127.0.0.1\nextendedKeyUsage = serverAuth\n",
        )
        .expect("ext");
        std::fs::write(d.join("client.ext"), "extendedKeyUsage = clientAuth\n").expect("ext");
        for (name, cn) in [("server", "localhost"), ("client", "paritygate-client")] {
            openssl(
                d,
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-subj",
                    &format!("/CN={cn}"),
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                ],
            );
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    &format!("{name}.ext"),
                    "-out",
                    &format!("{name}.pem"),
                ],
            );
        }
        Certs {
            ca: d.join("ca.pem"),
            server_cert: d.join("server.pem"),
            server_key: d.join("server.key"),
            client_cert: d.join("client.pem"),
            client_key: d.join("client.key"),
            other_ca: d.join("other-ca.pem"),
            _dir: dir,
        }
    }
}

/// The front process and what clients need to pass it.
#[derive(Debug)]
pub struct Front {
    pub protection: Protection,
    pub certs: Certs,
    /// tansu's own (plaintext) port behind the front.
    pub inner_port: u16,
    child: Option<Child>,
}

impl Front {
    pub fn new(protection: Protection) -> Front {
        Front {
            protection,
            certs: Certs::generate(),
            inner_port: free_port(),
            child: None,
        }
    }

    /// Listen on `port` in front of tansu's inner port; returns once it listens.
    pub fn spawn(&mut self, port: u16, logs: &Path) {
        let log = std::fs::File::create(logs.join("front.log")).expect("front log");
        let mut command = Command::new(program("PARITYGATE_PYTHON", "python3"));
        command
            .arg(root().join("tests/tools/kafka_front.py"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--backend", &format!("127.0.0.1:{}", self.inner_port)]);
        if self.protection.tls() {
            command
                .arg("--cert")
                .arg(&self.certs.server_cert)
                .arg("--key")
                .arg(&self.certs.server_key);
        }
        if self.protection == Protection::MutualTls {
            command.arg("--client-ca").arg(&self.certs.ca);
        }
        if let Some(mechanism) = self.protection.mechanism() {
            command
                .args(["--sasl", mechanism])
                .args(["--user", &format!("{USER}:{PASSWORD}")]);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect(
                "spawn tests/tools/kafka_front.py (PARITYGATE_PYTHON: the tools venv's python)",
            );
        let stdout = child.stdout.take().expect("front stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        assert!(
            line.starts_with("ready"),
            "the Kafka front did not start (see {}): {line:?}",
            logs.join("front.log").display()
        );
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The librdkafka properties of a client that passes this front (the password included).
    pub fn client_properties(&self) -> Vec<(&'static str, String)> {
        let mut p = self.public_properties();
        if self.protection.mechanism().is_some() {
            p.push(("sasl.password", PASSWORD.to_owned()));
        }
        p
    }

    /// The same without the secret: what goes into a config file's `[kafka.properties]` (the
    /// password comes from `PARITYGATE_KAFKA_PROPERTY_SASL_PASSWORD`).
    pub fn public_properties(&self) -> Vec<(&'static str, String)> {
        let mut p = vec![("security.protocol", self.protection.protocol().to_owned())];
        if self.protection.tls() {
            p.push(("ssl.ca.location", self.certs.ca.display().to_string()));
        }
        if self.protection == Protection::MutualTls {
            p.push((
                "ssl.certificate.location",
                self.certs.client_cert.display().to_string(),
            ));
            p.push((
                "ssl.key.location",
                self.certs.client_key.display().to_string(),
            ));
        }
        if let Some(mechanism) = self.protection.mechanism() {
            p.push(("sasl.mechanism", mechanism.to_owned()));
            p.push(("sasl.username", USER.to_owned()));
        }
        p
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.stop();
    }
}
