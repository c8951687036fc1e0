//! What `bench serve` reads off the running service and the machine: when every record is
//! counted and every key settled (polling the service's own API), its checkpoint metrics, and
//! the CPU seconds of a process.

use super::child::ServeChild;
use super::STALL;
use crate::config::Config;
use anyhow::bail;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Poll every service's status until each has counted all its records, nothing is in flight and
/// a settled watermark is set. Returns the matched keys over all services, and when the last
/// checkpoint was seen.
pub(super) async fn wait_settled(
    child: &ServeChild,
    config: &Config,
    expected: &[u64],
) -> anyhow::Result<(u64, Option<Instant>)> {
    let (mut last_checkpoint_at, mut last_checkpoints) = (None, 0);
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    let mut progress = Instant::now();
    let (started, mut reported) = (Instant::now(), Instant::now());
    loop {
        let mut done = true;
        let mut matched = 0;
        let mut in_flight_all = 0;
        for (service, want) in config.services.iter().zip(expected) {
            let status = child.get(&format!("/api/v1/services/{}", service.name))?;
            let Some(s) = status else {
                done = false;
                continue;
            };
            let n = |v: &Value| v.as_u64().unwrap_or(0);
            let records = n(&s["baseline"]["records"]) + n(&s["candidate"]["records"]);
            let in_flight: u64 = s["keys"]["in_flight"]
                .as_object()
                .map_or(0, |o| o.values().map(n).sum());
            matched += n(&s["keys"]["matched"]);
            in_flight_all += in_flight;
            if records > *want {
                bail!(
                    "{}: {records} records counted, only {want} produced",
                    service.name
                );
            }
            done &= records == *want && in_flight == 0 && !s["settled_until_ms"].is_null();
            if last.insert(service.name.clone(), records) != Some(records) {
                progress = Instant::now();
            }
        }
        // The API's counts move with evaluation rounds (paced during a backlog); the checkpoint
        // count moves with every stored batch, so its last change is when ingestion's state was
        // complete and settling began.
        let checkpoints = checkpoint_stats(child).0;
        if checkpoints != last_checkpoints {
            (last_checkpoints, last_checkpoint_at) = (checkpoints, Some(Instant::now()));
        }
        if done {
            return Ok((matched, last_checkpoint_at));
        }
        if reported.elapsed() >= Duration::from_secs(5) {
            reported = Instant::now();
            let counted: u64 = last.values().sum();
            eprintln!(
                "  {:>5.1} s: {counted} of {} records counted, {in_flight_all} keys in flight",
                started.elapsed().as_secs_f64(),
                expected.iter().sum::<u64>()
            );
        }
        if progress.elapsed() > STALL {
            bail!("serve made no progress for {STALL:?}: {last:?} of {expected:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// User + system CPU seconds of a process so far (`/proc/<pid>/stat`, in USER_HZ = 100 ticks);
/// 0 when unreadable (informative only).
pub(super) fn cpu_seconds(pid: u32) -> f64 {
    stat_seconds(pid, 2)
}

/// CPU seconds of `pid` and of its children that ended and were waited for (`socat`'s relays:
/// one forked process per connection).
pub(super) fn cpu_seconds_with_children(pid: u32) -> f64 {
    stat_seconds(pid, 4)
}

/// The sum of the first `fields` of utime, stime, cutime, cstime in `/proc/PID/stat`, in seconds.
fn stat_seconds(pid: u32, fields: usize) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`, which may contain spaces: utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(fields)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

/// `checkpoint_duration_seconds` count and sum from `/metrics` (zeros when unavailable: the
/// breakdown is informative, the measurement does not depend on it).
pub(super) fn checkpoint_stats(child: &ServeChild) -> (u64, f64) {
    let text = child
        .get_text("/metrics")
        .ok()
        .flatten()
        .unwrap_or_default();
    let value = |name: &str| crate::metrics::sample_sum(&text, name);
    (
        value("paritygate_checkpoint_duration_seconds_count") as u64,
        value("paritygate_checkpoint_duration_seconds_sum"),
    )
}
