//! `paritygate diff`: replay capture files through the core and build the report.
//!
//! Pass 1 streams every line once, keeping only a 64-byte row per event. Pass 2 re-reads just the
//! lines behind mismatching keys (by file and line number) to recover key texts and normalized
//! contents for explanations. A malformed line is counted for its side and reported with
//! file:line; the run goes on unless `strict` is set.

use crate::capture::format::{parse_line, sniff_topic};
use crate::capture::{for_each_line, total_size, CaptureError};
use crate::config::Config;
use crate::core::canonical::CANONICAL_VERSION;
use crate::core::compare::{compare, SideAccumulator};
use crate::core::event::{extract, key_hash, Keep, Outcome};
use crate::core::report::{service_report, InputSummary, LineError, Report, Resolved};
use crate::model::{Side, Verdict};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Stop at the first malformed line (exit 2) instead of counting it.
    pub strict: bool,
    /// Mismatches per service that carry values.
    pub max_examples: usize,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Writer schemas of `avro` sides (`--schemas DIR`).
    pub schemas: crate::core::avro::Schemas,
    /// Compare only events whose event time lies in this range (`--from/--until`).
    pub range: crate::core::range::TimeRange,
}

/// A capture record as extraction reads it: Avro sides' base64 values decoded, the datum turned
/// into JSON and a Debezium envelope taken apart (`core::payload`); JSON sides unchanged.
fn decoded<'a>(
    side_plan: &crate::core::plan::SidePlan,
    record: &crate::core::record::RecordView<'a>,
    lookup: Option<&dyn crate::core::avro::SchemaLookup>,
) -> Result<crate::core::payload::Prepared<'a>, crate::core::payload::DecodeFailure> {
    let (format, key) = (&side_plan.payload, &side_plan.key_format);
    if format.is_avro() || key.is_avro() {
        let bytes = crate::core::payload::from_capture(record, format, key)?;
        return crate::core::payload::prepare_for(side_plan, &bytes, lookup);
    }
    crate::core::payload::prepare_for(side_plan, record, lookup)
}

/// Why a replay could not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("{}:{}: {} (--strict)", .0.file, .0.line, .0.reason)]
    Strict(LineError),
}

/// Bits of a row location holding the line number; the file index sits above them.
const LINE_BITS: u32 = 40;
/// Malformed lines listed in the report (all are counted).
const MAX_LISTED_ERRORS: usize = 20;

fn loc(file: usize, line: u64) -> u64 {
    ((file as u64) << LINE_BITS) | line
}

/// Replay `files` against `config`; `on_bad_line` sees every malformed line as it is found.
pub fn replay(
    config: &Config,
    files: &[PathBuf],
    options: &ReplayOptions,
    on_bad_line: &mut dyn FnMut(&LineError),
) -> Result<Report, ReplayError> {
    let routes = config.routes();
    // `--from/--until` when given, else each service's `compare_from` (as `serve` compares).
    let range_of = |plan: &crate::core::plan::ServicePlan| {
        if options.range.is_bounded() {
            options.range
        } else {
            plan.compared
        }
    };
    let mut sides: Vec<[SideAccumulator; 2]> =
        config.plans().iter().map(|_| Default::default()).collect();
    let instant = |ms: Option<i64>| ms.and_then(crate::core::range::format_instant_ms);
    let mut inputs = InputSummary {
        files: files.iter().map(|p| p.display().to_string()).collect(),
        from: instant(options.range.from_ms),
        until: instant(options.range.until_ms),
        ..InputSummary::default()
    };
    let bytes = Arc::new(AtomicU64::new(0));
    let bar = progress_bar(options.progress, total_size(files));
    let mut strict_failure = None;

    for (file_index, path) in files.iter().enumerate() {
        let file_name = path.display().to_string();
        for_each_line(path, bytes.clone(), |line_no, line| {
            inputs.lines += 1;
            if line_no % 4096 == 0 {
                bar.set_position(bytes.load(Ordering::Relaxed));
            }
            let record = match parse_line(line) {
                Ok((_, record)) => record,
                Err(e) => {
                    let error = LineError {
                        file: file_name.clone(),
                        line: line_no,
                        reason: e.to_string(),
                    };
                    on_bad_line(&error);
                    match sniff_topic(line).and_then(|t| routes.get(t)) {
                        Some(&(s, side)) => sides[s][side as usize].counters.unparseable += 1,
                        None => inputs.unattributed_unparseable += 1,
                    }
                    if options.strict {
                        strict_failure = Some(error);
                        return false;
                    }
                    if inputs.errors.len() < MAX_LISTED_ERRORS {
                        inputs.errors.push(error);
                    }
                    return true;
                }
            };
            let Some(&(s, side)) = routes.get(record.topic.as_ref()) else {
                inputs.ignored_records += 1;
                return true;
            };
            let plan = &config.plan(s);
            let side_plan = plan.side(side);
            let acc = &mut sides[s][side as usize];
            acc.counters.records += 1;
            let record = match decoded(side_plan, &record, options.schemas.of(side)) {
                Ok(crate::core::payload::Prepared::Record(record, _)) => record,
                Ok(crate::core::payload::Prepared::Tombstone) => {
                    let skip = crate::core::event::Skip::DebeziumTombstone.as_str();
                    *acc.counters.skipped.entry(skip).or_default() += 1;
                    return true;
                }
                Err(failure) => {
                    acc.counters.unparseable += 1;
                    *acc.counters
                        .unparseable_by_reason
                        .entry(failure.error.reason())
                        .or_default() += 1;
                    return true;
                }
            };
            match extract(side_plan, &record, Keep::Digest) {
                Outcome::Event(event) => {
                    // Event time as serve reads it: the configured source, else the record's.
                    let at = event.event_time_ms.or(record.timestamp_ms);
                    if !acc.counters.excluded.admit(range_of(plan).place(at)) {
                        return true;
                    }
                    acc.push(
                        &event,
                        record.partition,
                        loc(file_index, line_no),
                        key_hash(&event.key),
                    );
                }
                Outcome::Rejected(r) => *acc.counters.rejected.entry(r.as_str()).or_default() += 1,
                Outcome::Skipped(s) => *acc.counters.skipped.entry(s.as_str()).or_default() += 1,
            }
            true
        })?;
        if let Some(error) = strict_failure.take() {
            bar.finish_and_clear();
            return Err(ReplayError::Strict(error));
        }
    }
    bar.finish_and_clear();

    let finished: Vec<_> = sides
        .into_iter()
        .zip(config.plans())
        .map(|([b, c], plan)| {
            let (b, c) = (b.finish(plan.has_position), c.finish(plan.has_position));
            let comparison = compare(&b, &c, plan.has_position);
            (b, c, comparison)
        })
        .collect();

    // Pass 2: the lines behind mismatching keys, grouped by file.
    let mut wanted: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    for (_, _, comparison) in &finished {
        for m in &comparison.mismatches {
            for row in [m.baseline, m.candidate].into_iter().flatten() {
                wanted
                    .entry((row.loc >> LINE_BITS) as usize)
                    .or_default()
                    .push(row.loc & ((1 << LINE_BITS) - 1));
            }
        }
    }
    let resolved = resolve(config, files, &routes, wanted, &options.schemas)?;

    let services: Vec<_> = finished
        .iter()
        .zip(config.plans())
        .map(|((b, c, comparison), plan)| {
            let mut report =
                service_report(plan, b, c, comparison, &resolved, options.max_examples);
            report.baseline.show_excluded(b, &range_of(plan));
            report.candidate.show_excluded(c, &range_of(plan));
            report
        })
        .collect();
    Ok(Report {
        canonical_version: CANONICAL_VERSION,
        verdict: Verdict::combine(services.iter().map(|s| s.verdict)),
        services,
        inputs,
    })
}

fn resolve(
    config: &Config,
    files: &[PathBuf],
    routes: &HashMap<&str, (usize, Side)>,
    wanted: BTreeMap<usize, Vec<u64>>,
    schemas: &crate::core::avro::Schemas,
) -> Result<Resolved, ReplayError> {
    let mut resolved = Resolved::new();
    for (file_index, mut lines) in wanted {
        lines.sort_unstable();
        lines.dedup();
        let mut next = 0;
        for_each_line(&files[file_index], Arc::default(), |line_no, line| {
            if lines.get(next) != Some(&line_no) {
                return true;
            }
            next += 1;
            if let Ok((_, record)) = parse_line(line) {
                if let Some(&(s, side)) = routes.get(record.topic.as_ref()) {
                    let plan = &config.plan(s);
                    let side_plan = plan.side(side);
                    let Ok(crate::core::payload::Prepared::Record(record, _)) =
                        decoded(side_plan, &record, schemas.of(side))
                    else {
                        return next < lines.len();
                    };
                    if let Outcome::Event(event) = extract(side_plan, &record, Keep::Content) {
                        if let Some(content) = event.content {
                            let key = String::from_utf8_lossy(&event.key).into_owned();
                            resolved.insert(loc(file_index, line_no), (key, content));
                        }
                    }
                }
            }
            next < lines.len()
        })?;
    }
    Ok(resolved)
}

fn progress_bar(enabled: bool, total: u64) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} replaying {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar
}
