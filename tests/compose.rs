//! docker-compose.yml cannot run here (no Docker engine): validate it statically against the
//! Compose schema with `docker-compose config -q`, which needs no engine.

use std::process::Command;

#[test]
fn compose_file_is_valid() {
    let out = Command::new("docker-compose")
        .args(["-f", "docker-compose.yml", "config", "-q"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("POSTGRES_PASSWORD", "test-only")
        .output()
        .expect("docker-compose is installed by scripts/setup");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn compose_file_refuses_to_run_without_a_password() {
    let out = Command::new("docker-compose")
        .args(["-f", "docker-compose.yml", "config", "-q"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("POSTGRES_PASSWORD")
        .output()
        .expect("docker-compose is installed by scripts/setup");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("POSTGRES_PASSWORD"));
}
