//! Tests of `serve::ingest::rebalance`: revocations hand pending chunks over and wait for the lanes'
//! checkpoints; chunks go out when full; stopping first makes closing wait for nothing.

use super::*;
use crate::model::{Side, TopicPartition};
use crate::serve::lane::record::OwnedRecord;
use rdkafka::message::{OwnedMessage, Timestamp};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;

fn routed(partition: i32, offset: i64) -> Routed {
    let message = OwnedMessage::new(
        Some(b"{}".to_vec()),
        Some(b"k".to_vec()),
        "t".to_owned(),
        Timestamp::NotAvailable,
        partition,
        offset,
        None,
    );
    Routed {
        record: OwnedRecord::copy_from(&message, Arc::from("t")),
        service: 0,
        side: Side::Baseline,
        is_error: false,
    }
}

/// What a stand-in worker saw, in order: `records:N`, `revoke:P…`, `stop`.
type Log = Arc<Mutex<Vec<(usize, String)>>>;

/// A stand-in for a lane worker: logs its inputs; answers a revocation only after `commit`
/// (a checkpoint's transaction) and after logging `committed`.
fn worker(lane: usize, inbox: Receiver<Input>, log: Log, commit: Duration) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let note = |what: String| log.lock().unwrap().push((lane, what));
        while let Ok(input) = inbox.recv() {
            match input {
                Input::Records(chunk) => note(format!("records:{}", chunk.len())),
                Input::Revoke { partitions, done } => {
                    let names: Vec<String> = partitions.iter().map(|tp| tp.to_string()).collect();
                    note(format!("revoke:{}", names.join(",")));
                    std::thread::sleep(commit);
                    note("committed".into());
                    let _ = done.send(());
                }
                Input::Stop => {
                    note("stop".into());
                    return;
                }
            }
        }
    })
}

fn lanes(n: usize, commit: Duration) -> (LaneContext, Log, Vec<JoinHandle<()>>) {
    let log = Log::default();
    let (mut inboxes, mut threads) = (Vec::new(), Vec::new());
    for lane in 0..n {
        let (inbox, receiver) = sync_channel(8);
        inboxes.push(inbox);
        threads.push(worker(lane, receiver, log.clone(), commit));
    }
    (LaneContext::new(inboxes), log, threads)
}

fn seen_by(log: &Log, lane: usize) -> Vec<String> {
    let log = log.lock().unwrap();
    log.iter()
        .filter(|(l, _)| *l == lane)
        .map(|(_, s)| s.clone())
        .collect()
}

#[test]
fn a_revocation_hands_pending_records_over_first_and_returns_once_every_lane_committed() {
    let (context, log, threads) = lanes(2, Duration::from_millis(150));
    for offset in 0..3 {
        assert!(context.push(0, routed(0, offset)));
    }
    assert!(context.push(1, routed(1, 0)));
    // Fewer than a chunk: still pending, nothing handed over yet.
    assert!(log.lock().unwrap().is_empty());

    context.revoke(&[TopicPartition::new("t", 0)]);
    // Returned only after both lanes' checkpoints committed, each after its records.
    assert_eq!(seen_by(&log, 0), ["records:3", "revoke:t/0", "committed"]);
    assert_eq!(seen_by(&log, 1), ["records:1", "revoke:t/0", "committed"]);

    context.stop_all();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(seen_by(&log, 0).last().map(String::as_str), Some("stop"));
}

#[test]
fn a_full_chunk_is_handed_over_without_waiting_for_the_linger() {
    let (context, log, threads) = lanes(1, Duration::ZERO);
    for offset in 0..CHUNK as i64 + 1 {
        assert!(context.push(0, routed(0, offset)));
    }
    context.stop_all();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        seen_by(&log, 0),
        [
            format!("records:{CHUNK}"),
            "records:1".into(),
            "stop".into()
        ]
    );
}

#[test]
fn closing_after_the_workers_stopped_waits_for_no_checkpoint() {
    let (context, log, threads) = lanes(2, Duration::from_secs(60));
    context.stop_all();
    let started = Instant::now();
    // Closing the consumer revokes everything: the workers already committed and stopped.
    context.revoke(&[TopicPartition::new("t", 0), TopicPartition::new("t", 1)]);
    assert!(started.elapsed() < Duration::from_secs(5));
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(seen_by(&log, 0), ["stop"]);
    assert_eq!(seen_by(&log, 1), ["stop"]);
}

#[test]
fn pushing_to_a_gone_worker_says_so() {
    let (context, _log, threads) = lanes(1, Duration::ZERO);
    context.stop_all();
    for t in threads {
        t.join().unwrap();
    }
    for offset in 0..CHUNK as i64 {
        if !context.push(0, routed(0, offset)) {
            return;
        }
    }
    panic!("a full chunk for a stopped worker was accepted");
}
