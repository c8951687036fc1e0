//! docker-compose.yml cannot run here (no Docker engine): validate it statically. The Compose
//! schema through `docker-compose config -q` (needs no engine), then what the schema cannot know:
//! every mounted file exists, every `PARITYGATE_…` name is one paritygate reads, ports and
//! addresses agree with the config and Prometheus, secrets only come from `.env`, and the
//! Dockerfile's `COPY` sources exist and survive `.dockerignore`.

use paritygate::config::env::is_known_name;
use paritygate::config::Config;
use serde_yaml::Value;
use std::path::Path;
use std::process::Command;

fn compose_config(vars: &[(&str, &str)], remove: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("docker-compose");
    cmd.args(["-f", "docker-compose.yml", "config", "-q"])
        .current_dir(crate::support::root());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    for k in remove {
        cmd.env_remove(k);
    }
    cmd.output()
        .expect("docker-compose is installed by scripts/setup")
}

fn compose() -> Value {
    let text = std::fs::read_to_string(crate::support::root().join("docker-compose.yml")).unwrap();
    serde_yaml::from_str(&text).expect("docker-compose.yml parses")
}

fn service<'a>(c: &'a Value, name: &str) -> &'a Value {
    &c["services"][name]
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The environment of a service as (name, value).
fn env(svc: &Value) -> Vec<(String, String)> {
    svc["environment"]
        .as_mapping()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let v = v
                        .as_str()
                        .map(str::to_owned)
                        .or_else(|| serde_yaml::to_string(v).ok().map(|s| s.trim().to_owned()))?;
                    Some((k.as_str()?.to_owned(), v))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Services running the paritygate image (built here or reused by tag).
fn paritygate_services(c: &Value) -> Vec<(String, Value)> {
    c["services"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, s)| s["image"].as_str() == Some("paritygate:local"))
        .map(|(k, s)| (k.as_str().unwrap().to_owned(), s.clone()))
        .collect()
}

const PASSWORDS: [(&str, &str); 2] = [
    ("POSTGRES_PASSWORD", "test-only"),
    ("GRAFANA_ADMIN_PASSWORD", "test-only"),
];

#[test]
fn compose_file_is_valid() {
    let out = compose_config(&PASSWORDS, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn compose_file_refuses_to_run_without_a_password() {
    for (missing, _) in PASSWORDS {
        let others: Vec<_> = PASSWORDS
            .iter()
            .copied()
            .filter(|p| p.0 != missing)
            .collect();
        let out = compose_config(&others, &[missing]);
        assert!(!out.status.success(), "{missing}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(missing));
    }
}

#[test]
fn every_mounted_or_built_file_exists() {
    let c = compose();
    let root = crate::support::root();
    for (name, svc) in c["services"].as_mapping().unwrap() {
        for volume in strings(&svc["volumes"]) {
            let host = volume.split(':').next().unwrap();
            if host.starts_with("./") {
                assert!(root.join(host).exists(), "{name:?}: {host} is missing");
            }
        }
        if let Some(ctx) = svc["build"].as_str() {
            assert!(root.join(ctx).join("Dockerfile").is_file(), "{name:?}");
        }
    }
    assert!(root.join(".env.example").is_file());
}

#[test]
fn environment_names_are_ones_paritygate_reads() {
    let c = compose();
    let services = paritygate_services(&c);
    assert!(services.len() >= 3, "topics, paritygate, generator");
    assert!(services
        .iter()
        .any(|(_, s)| s["build"].as_str() == Some(".")));
    for (name, svc) in &services {
        // The mounted config names its target URL variables (`url_env`): those are read too.
        let mount = strings(&svc["volumes"])
            .into_iter()
            .find(|v| v.contains(":/etc/paritygate/paritygate.toml"))
            .unwrap_or_else(|| panic!("{name}: no config mounted"));
        let host = mount.split(':').next().unwrap();
        let config =
            Config::load(&crate::support::root().join(host)).expect("mounted config loads");
        let url_envs: Vec<String> = config
            .services
            .iter()
            .filter_map(|s| s.targets.as_ref())
            .flat_map(|t| [t.baseline.url_env.clone(), t.candidate.url_env.clone()])
            .collect();
        let args = strings(&svc["command"]);
        assert!(
            args.iter().any(|a| a == "/etc/paritygate/paritygate.toml"),
            "{name}: the command must use the mounted config"
        );
        for (var, _) in env(svc) {
            assert!(
                is_known_name(&var) || url_envs.contains(&var),
                "{name}: paritygate does not read {var}"
            );
        }
        for var in &url_envs {
            assert!(
                env(svc).iter().any(|(k, _)| k == var),
                "{name}: {var} unset"
            );
        }
    }
}

#[test]
fn ports_and_addresses_agree_with_the_config_and_prometheus() {
    let c = compose();
    let pg = service(&c, "paritygate");
    let vars = env(pg);
    let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let listen = get("PARITYGATE_HTTP_LISTEN").expect("listen address");
    let port = listen.rsplit(':').next().unwrap().to_owned();
    assert!(
        listen.starts_with("0.0.0.0:"),
        "reachable from other containers"
    );
    assert!(strings(&pg["ports"])
        .iter()
        .any(|p| p.ends_with(&format!(":{port}"))));
    assert!(strings(&pg["healthcheck"]["test"])
        .iter()
        .any(|t| t.contains(&format!("localhost:{port}/"))));
    let prometheus =
        std::fs::read_to_string(crate::support::root().join("dashboards/prometheus.yml")).unwrap();
    assert!(prometheus.contains(&format!("\"paritygate:{port}\"")));

    let brokers = get("PARITYGATE_KAFKA_BROKERS").unwrap();
    let redpanda = strings(&service(&c, "redpanda")["command"]).join(" ");
    assert!(
        redpanda.contains(&format!("internal://{brokers}")),
        "{brokers}"
    );
    let store = get("PARITYGATE_STORE_URL").unwrap();
    assert!(store.contains("@postgres:5432/"), "{store}");
    let datasource = std::fs::read_to_string(
        crate::support::root().join("dashboards/provisioning/datasources/prometheus.yml"),
    )
    .unwrap();
    assert!(datasource.contains("http://prometheus:9090"));
    assert!(strings(&service(&c, "prometheus")["ports"]).contains(&"9090:9090".to_owned()));
}

#[test]
fn health_checks_gate_the_start_order_and_secrets_come_from_env() {
    let c = compose();
    let services = c["services"].as_mapping().unwrap();
    for (name, svc) in services {
        let one_shot = svc["restart"].as_str() == Some("no");
        assert!(
            one_shot || svc["healthcheck"]["test"].is_sequence(),
            "{name:?}: no healthcheck"
        );
        if let Some(deps) = svc["depends_on"].as_mapping() {
            for (dep, how) in deps {
                let condition = how["condition"].as_str().unwrap_or("");
                match condition {
                    "service_healthy" => assert!(
                        services[dep]["healthcheck"].is_mapping(),
                        "{name:?} waits for {dep:?}, which has no healthcheck"
                    ),
                    "service_completed_successfully" => {
                        assert_eq!(services[dep]["restart"].as_str(), Some("no"))
                    }
                    other => panic!("{name:?} → {dep:?}: condition `{other}`"),
                }
            }
        }
        for (var, value) in env(svc) {
            let secret = ["PASSWORD", "SECRET", "TOKEN"]
                .iter()
                .any(|s| var.contains(s));
            let url_with_password = value.contains("://") && value.contains('@');
            if secret || url_with_password {
                assert!(
                    value.contains("${"),
                    "{name:?}: {var} holds a literal secret"
                );
            }
        }
    }
}

/// `.dockerignore` patterns (the subset this repository uses: names, `*.ext`, `**/name`).
fn ignored(path: &str, patterns: &[String]) -> bool {
    let parts: Vec<&str> = path.trim_start_matches("./").split('/').collect();
    patterns.iter().any(|p| {
        if let Some(name) = p.strip_prefix("**/") {
            parts.contains(&name)
        } else if let Some(ext) = p.strip_prefix('*') {
            path.ends_with(ext)
        } else {
            parts.first() == Some(&p.trim_end_matches('/'))
        }
    })
}

#[test]
fn the_image_builds_from_paths_the_context_sends() {
    let root = crate::support::root();
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let patterns: Vec<String> = std::fs::read_to_string(root.join(".dockerignore"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let stages = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(stages >= 2, "multi-stage");
    let mut copied = 0;
    for line in dockerfile.lines().filter(|l| l.starts_with("COPY ")) {
        if line.contains("--from=") {
            continue;
        }
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        for src in &args[..args.len() - 1] {
            assert!(Path::new(&root.join(src)).exists(), "COPY {src}: missing");
            assert!(
                !ignored(src, &patterns),
                "COPY {src}: excluded by .dockerignore"
            );
            copied += 1;
        }
    }
    assert!(copied >= 4, "Cargo.toml, Cargo.lock, src, migrations");
    assert!(ignored("target", &patterns) && ignored(".env", &patterns));
}
