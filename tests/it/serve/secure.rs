//! Production connectivity over real parts: Kafka with TLS, mutual TLS and SASL (PLAIN,
//! SCRAM-SHA-256, SCRAM-SHA-512, over plaintext and TLS) through `tests/tools/kafka_front.py` in
//! front of tansu (`support::secure` says why), Postgres with `sslmode=verify-full` against the
//! local server's certificate, and records produced with every compression codec.
//!
//! Secrets travel as in production: the SASL password only in
//! `PARITYGATE_KAFKA_PROPERTY_SASL_PASSWORD`, never in the file.

use crate::support::app::{AppConfig, InProcess};
use crate::support::broker::{Batching, Broker};
use crate::support::db::TestDb;
use crate::support::expect::{assert_matches_replay, wait_caught_up};
use crate::support::http::{u64_at, Api};
use crate::support::secure::{Front, Protection};
use crate::support::traffic::{create_topics, fixture_config, Fixture, FIXTURE_PARTITIONS};
use crate::support::{program, wait_until};
use serde_json::Value;
use std::time::Duration;

const SERVICES: &str = r#"
[[services]]
name = "stock"
baseline_topics = ["sec.stock"]
candidate_topics = ["bento.sec.stock"]
key = { from = "fields", pointers = ["/sku"] }
"#;

async fn records(api: &Api) -> Result<(u64, u64), String> {
    let s = api.service("stock").await?;
    Ok((
        u64_at(&s, "/baseline/records")?,
        u64_at(&s, "/candidate/records")?,
    ))
}

async fn produce_stock(broker: &Broker, n: u32) {
    for topic in ["sec.stock", "bento.sec.stock"] {
        broker.create_topic(topic, 1).await;
    }
    for sku in 0..n {
        let payload = format!("{{\"sku\":\"s{sku}\",\"qty\":{sku}}}");
        for topic in ["sec.stock", "bento.sec.stock"] {
            broker
                .produce(topic, 0, None, &[], Some(payload.as_bytes()))
                .await;
        }
    }
}

/// Whether every connection the service holds to `db` is encrypted.
async fn store_connections_are_tls(db: &TestDb) -> bool {
    let mut conn = db.connect().await;
    let (all, tls): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
         JOIN pg_stat_ssl s USING (pid) WHERE a.datname = $1 AND a.application_name = 'paritygate'",
    )
    .bind(db.name())
    .fetch_one(&mut conn)
    .await
    .unwrap();
    all > 0 && all == tls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_ssl_with_scram_reads_the_fixtures_exactly_into_a_verified_tls_store() {
    crate::support::init_tracing();
    let broker = Broker::start_secure(Front::new(Protection::SaslTls("SCRAM-SHA-512"))).await;
    create_topics(&broker, &fixture_config(), FIXTURE_PARTITIONS).await;
    let fixture = Fixture::load("clean");
    let expected = fixture.expected();
    let db = TestDb::create().await;
    let mut config = AppConfig::fixtures(&broker, &db).secured_for(&broker);
    config.store_url = db.tls_url("verify-full");
    let text = config.toml();
    assert!(
        text.contains("SASL_SSL") && !text.contains(crate::support::secure::PASSWORD),
        "the file holds no secret:\n{text}"
    );
    let halves = fixture.split(2);
    broker.produce_all(halves[0], Batching::OnePerRecord).await;
    let app = InProcess::start(config.config()).await;
    broker.produce_all(halves[1], Batching::OnePerRecord).await;
    wait_caught_up(&app.api, &expected, Duration::from_secs(60)).await;
    assert_matches_replay(&app.api, &expected).await;
    assert_eq!(app.api.status("/readyz").await.unwrap(), 200);
    assert!(
        store_connections_are_tls(&db).await,
        "a store connection without TLS"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_mutual_tls_and_every_sasl_mechanism_are_read() {
    crate::support::init_tracing();
    for protection in [
        Protection::Tls,
        Protection::MutualTls,
        Protection::Sasl("PLAIN"),
        Protection::Sasl("SCRAM-SHA-256"),
        Protection::SaslTls("SCRAM-SHA-256"),
    ] {
        let broker = Broker::start_secure(Front::new(protection)).await;
        produce_stock(&broker, 20).await;
        let db = TestDb::create().await;
        let mut config = AppConfig::with_services(SERVICES, &broker, &db).secured_for(&broker);
        config.store_url = db.tls_url("require");
        let app = InProcess::start(config.config()).await;
        wait_until(
            &format!("{protection:?}: 20 records per side"),
            Duration::from_secs(45),
            || async {
                match records(&app.api).await? {
                    (20, 20) => Ok(()),
                    got => Err(format!(
                        "{got:?}; readyz {}",
                        app.api.get("/readyz").await?.1
                    )),
                }
            },
        )
        .await;
        app.stop().await;
    }
}

/// A client the cluster refuses is not ready, says which side and why, and counts nothing.
async fn refused(broker: &Broker, db: &TestDb, config: AppConfig, cause: &[&str]) -> Value {
    let app = InProcess::start(config.config()).await;
    let ready = wait_until(
        "/readyz names the refusal",
        Duration::from_secs(45),
        || async {
            let (code, body) = app.api.get("/readyz").await?;
            let error = body["kafka"]["baseline"]["error"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let named = cause.iter().any(|c| error.contains(c));
            if code == 503 && body["kafka"]["baseline"]["reachable"] == false && named {
                Ok(body)
            } else {
                Err(format!("{code} {body}"))
            }
        },
    )
    .await;
    assert_eq!(ready["kafka"]["candidate"]["reachable"], false, "{ready}");
    let counted: i64 = sqlx::query_scalar("SELECT coalesce(sum(records), 0)::int8 FROM tallies")
        .fetch_one(&mut db.connect().await)
        .await
        .unwrap();
    assert_eq!(
        counted, 0,
        "nothing is counted from a cluster that refuses the client"
    );
    let _ = broker;
    app.stop().await;
    ready
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_an_untrusted_ca_and_a_plaintext_client_are_refused_clearly() {
    crate::support::init_tracing();
    let broker = Broker::start_secure(Front::new(Protection::SaslTls("SCRAM-SHA-512"))).await;
    produce_stock(&broker, 5).await;
    let base = |db: &TestDb| AppConfig::with_services(SERVICES, &broker, db);

    let db = TestDb::create().await;
    let wrong = base(&db).secured_for(&broker).env(
        "PARITYGATE_KAFKA_PROPERTY_SASL_PASSWORD",
        "not-the-password",
    );
    let ready = refused(
        &broker,
        &db,
        wrong,
        &["Authentication failed", "SASL authentication error"],
    )
    .await;
    println!("wrong password: {ready}");

    let db = TestDb::create().await;
    let mut untrusted = base(&db).secured_for(&broker);
    let other_ca = broker.untrusted_ca().unwrap().display().to_string();
    untrusted = untrusted.kafka_property("ssl.ca.location", &other_ca);
    let ready = refused(&broker, &db, untrusted, &["certificate verify failed"]).await;
    println!("untrusted CA: {ready}");

    let db = TestDb::create().await;
    let plaintext = base(&db);
    let ready = refused(&broker, &db, plaintext, &["security.protocol"]).await;
    println!("plaintext: {ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_every_compression_codec_are_counted_exactly() {
    crate::support::init_tracing();
    let broker = Broker::start().await;
    for topic in ["sec.stock", "bento.sec.stock"] {
        broker.create_topic(topic, 1).await;
    }
    // An independent producer (confluent-kafka, its own librdkafka) with each codec in turn.
    let script = r#"
import sys
from confluent_kafka import Producer
addr = sys.argv[1]
n = 0
for codec in ["gzip", "snappy", "lz4", "zstd", "none"]:
    p = Producer({"bootstrap.servers": addr, "compression.type": codec, "linger.ms": 5})
    for i in range(40):
        payload = '{"sku":"%s-%d","qty":%d,"pad":"%s"}' % (codec, i, i, "x" * 200)
        for topic in ["sec.stock", "bento.sec.stock"]:
            p.produce(topic, payload.encode(), partition=0)
        n += 1
    assert p.flush(30) == 0
print(n)
"#;
    let out = tokio::process::Command::new(program("PARITYGATE_PYTHON", "python3"))
        .arg("-c")
        .arg(script)
        .arg(broker.addr())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let produced: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(produced, 200);
    let db = TestDb::create().await;
    let app = InProcess::start(AppConfig::with_services(SERVICES, &broker, &db).config()).await;
    wait_until(
        "every record of every codec",
        Duration::from_secs(45),
        || async {
            let s = app.api.service("stock").await?;
            let got = (
                u64_at(&s, "/baseline/events")?,
                u64_at(&s, "/candidate/events")?,
                u64_at(&s, "/keys/matched")?,
            );
            (got == (produced, produced, produced))
                .then_some(())
                .ok_or(format!("{got:?}"))
        },
    )
    .await;
    app.stop().await;
}

/// Why a store on `url` cannot reach its database.
async fn refusal(url: &str) -> String {
    paritygate::store::Store::connect_lazy(url, 1)
        .unwrap()
        .ping()
        .await
        .unwrap_err()
        .to_string()
}

/// The store over every `sslmode` a libpq user writes, and refusals that name their cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_honours_sslmode_and_names_tls_refusals() {
    use paritygate::store::Store;
    let db = TestDb::create().await;
    for (mode, encrypted) in [
        ("disable", false),
        ("require", true),
        ("verify-ca", true),
        ("verify-full", true),
    ] {
        let store = Store::connect_lazy(&db.tls_url(mode), 2).unwrap();
        store
            .migrate()
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        let ssl: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!(ssl, encrypted, "sslmode={mode}");
        store.pool.close().await;
    }
    // verify-full through 127.0.0.1: the certificate names localhost.
    let by_ip = db
        .tls_url("verify-full")
        .replace("@localhost:", "@127.0.0.1:");
    let e = refusal(&by_ip).await;
    assert!(
        e.to_lowercase().contains("certificate") || e.contains("hostname"),
        "{e}"
    );
    // A root certificate that cannot be read is named. (A root that did not sign the server's
    // certificate cannot be shown refused here: sqlx adds `sslrootcert` to the system's trusted
    // roots, and this machine's system store trusts the snakeoil certificate; README, Connecting to
    // production, says so.)
    let missing = format!(
        "{}?sslmode=verify-ca&sslrootcert=/nonexistent/root.pem",
        db.url().replace("@127.0.0.1:", "@localhost:")
    );
    let e = refusal(&missing).await;
    assert!(
        e.contains("/nonexistent/root.pem") || e.contains("No such file"),
        "{e}"
    );
}
