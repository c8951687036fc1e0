//! `paritygate diff --config paritygate.toml CAPTURE…`

use super::{interactive_stderr, render, EXIT_BAD_INPUT};
use crate::config::Config;
use crate::replay::{replay, ReplayOptions};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The config file (services, topics, normalization rules).
    #[arg(long, short, env = "PARITYGATE_CONFIG")]
    config: PathBuf,
    /// Capture files (`kcat -J` or `rpk topic consume` JSON Lines, optionally gzip); records are
    /// routed to a service and side by their topic.
    #[arg(required = true)]
    captures: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Treat a malformed line as an input error (exit 2) instead of counting it.
    #[arg(long)]
    strict: bool,
    /// Mismatches per service that carry field values.
    #[arg(long, default_value_t = 20)]
    max_examples: usize,
    /// Avro writer schemas for `payload = "avro"` sides, as files named `ID.avsc` (the schema
    /// ids of the Confluent wire format): captures are compared without a registry.
    #[arg(long)]
    schemas: Option<PathBuf>,
    /// Compare only events with event time at or after this RFC 3339 instant (an observation
    /// epoch's start); earlier ones are counted per side as `before_start`.
    #[arg(long, value_parser = instant)]
    from: Option<i64>,
    /// …and before this RFC 3339 instant (later ones: `after_until`).
    #[arg(long, value_parser = instant)]
    until: Option<i64>,
}

/// An RFC 3339 instant as Unix milliseconds.
fn instant(text: &str) -> Result<i64, String> {
    use crate::core::range::{parse_instant_ms, INSTANT_EXAMPLE};
    parse_instant_ms(text)
        .map_err(|e| format!("not an RFC 3339 instant (e.g. {INSTANT_EXAMPLE}): {e}"))
}

const MAX_WARNINGS: u64 = 20;

pub fn run(args: &DiffArgs) -> u8 {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_BAD_INPUT;
        }
    };
    // `auto` is decided on the live data by `serve` (the epoch it starts); a capture cut
    // anywhere would decide another start, so `diff` is told the one `serve` chose.
    if args.from.is_none() {
        let auto = config
            .services
            .iter()
            .find(|s| s.compare_from == crate::config::model::CompareFrom::Auto);
        if let Some(s) = auto {
            eprintln!(
                "error: service `{}` has compare_from = \"auto\", which serve decides on live data: pass --from <the start serve chose> (GET /api/v1/services/{}/epochs shows it)",
                s.name, s.name
            );
            return EXIT_BAD_INPUT;
        }
    }
    if let (Some(from), Some(until)) = (args.from, args.until) {
        if until <= from {
            eprintln!("error: --until must be later than --from");
            return EXIT_BAD_INPUT;
        }
    }
    let schemas = match &args.schemas {
        None => Default::default(),
        Some(dir) => match crate::schemas::SchemaDir::read(dir) {
            Ok(found) => {
                let found: std::sync::Arc<dyn crate::core::avro::SchemaLookup> =
                    std::sync::Arc::new(found);
                crate::core::avro::Schemas {
                    baseline: Some(found.clone()),
                    candidate: Some(found),
                }
            }
            Err(e) => {
                eprintln!("error: --schemas: {e}");
                return EXIT_BAD_INPUT;
            }
        },
    };
    let options = ReplayOptions {
        strict: args.strict,
        max_examples: args.max_examples,
        progress: interactive_stderr(),
        schemas,
        range: crate::core::range::TimeRange {
            from_ms: args.from,
            until_ms: args.until,
        },
    };
    // Every malformed line is counted in the report; the terminal gets the first few.
    let mut bad_lines = 0u64;
    let mut warn = |e: &crate::core::report::LineError| {
        bad_lines += 1;
        if bad_lines <= MAX_WARNINGS {
            eprintln!("warning: {}:{}: {}", e.file, e.line, e.reason);
        }
    };
    let result = replay(&config, &args.captures, &options, &mut warn);
    if bad_lines > MAX_WARNINGS {
        eprintln!(
            "warning: {} more malformed lines (see the report's `inputs`)",
            bad_lines - MAX_WARNINGS
        );
    }
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_BAD_INPUT;
        }
    };
    match args.format {
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: cannot render the report: {e}");
                return EXIT_BAD_INPUT;
            }
        },
        Format::Text => print!("{}", render::summary(&report)),
    }
    report.verdict.exit_code()
}
