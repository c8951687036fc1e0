//! What a Kafka cluster last told this process about itself, for `/readyz`: reachable or not, and
//! the cause in librdkafka's words ("SASL authentication error: …", "SSL handshake failed: …
//! certificate verify failed", a connection closed in the ApiVersion state for a plaintext client
//! on a TLS port). librdkafka reports those causes through a client's error callback, not through
//! the failed request, so every client paritygate makes of a cluster (the lane consumer, the
//! evaluator's metadata client) records its errors into the cluster's [`ClusterHealth`].

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use std::sync::{Arc, Mutex};

/// The latest error a cluster's clients reported (shared by every client of the cluster).
#[derive(Debug, Clone, Default)]
pub struct ClusterHealth(Arc<Mutex<Option<String>>>);

impl ClusterHealth {
    pub fn record(&self, error: String) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error);
    }

    /// The error reported since the last call, if any (a successful round starts clean).
    pub fn take(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

/// A failed request's error in words an operator can act on. librdkafka reports a connection that
/// the other end closes before any answer (a plaintext client on a TLS or SASL listener, a wrong
/// port) only as a transport failure, without a log line or error event naming it.
pub fn explain(error: &KafkaError) -> String {
    let text = error.to_string();
    if text.contains("BrokerTransportFailure") {
        format!(
            "{text}: the cluster closed the connection before answering; check `bootstrap.servers` \
             and `security.protocol` (a plaintext client on a TLS or SASL listener fails this way)"
        )
    } else {
        text
    }
}

/// The context of a client that only asks for metadata and end offsets.
#[derive(Debug, Clone, Default)]
pub struct HealthContext {
    pub health: ClusterHealth,
}

impl ClientContext for HealthContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "kafka client error");
        self.health.record(reason.to_owned());
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log(&self.health, level, fac, message);
    }
}

/// librdkafka's log lines: to `tracing`, and a connection failure (facility `FAIL`) recorded as
/// the cluster's cause. Its error event for a plaintext client on a TLS listener says only
/// "broker transport failure"; the `FAIL` line says "Disconnected while requesting ApiVersion:
/// might be caused by incorrect security.protocol configuration (connecting to a SSL listener?)".
pub fn log(health: &ClusterHealth, level: RDKafkaLogLevel, fac: &str, message: &str) {
    use RDKafkaLogLevel::*;
    match level {
        Emerg | Alert | Critical | Error => tracing::error!(target: "librdkafka", fac, "{message}"),
        Warning => tracing::warn!(target: "librdkafka", fac, "{message}"),
        Notice | Info => tracing::info!(target: "librdkafka", fac, "{message}"),
        Debug => tracing::debug!(target: "librdkafka", fac, "{message}"),
    }
    if fac == "FAIL" {
        health.record(message.to_owned());
    }
}

impl ConsumerContext for HealthContext {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_reported_once() {
        let context = HealthContext::default();
        context.error(
            KafkaError::ClientCreation("x".into()),
            "SASL authentication error: Authentication failed",
        );
        assert_eq!(
            context.health.take().as_deref(),
            Some("SASL authentication error: Authentication failed")
        );
        assert_eq!(context.health.take(), None);
    }
}
