//! `paritygate rowdiff --config paritygate.toml --service NAME`: the exhaustive table diff.
//!
//! Exit codes as `diff`: 0 the tables hold the same rows, 1 differences, 2 bad usage, config,
//! schema or an unreachable database. The work is [`crate::rowdiff::cli_rowdiff`]; this file only
//! finds the service's `[services.targets]` and maps outcomes to exit codes.

use super::diff::Format;
use super::EXIT_BAD_INPUT;
use crate::config::Config;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct RowDiffArgs {
    /// The config file; the service needs a `[services.targets]` table.
    #[arg(long, short, env = "PARITYGATE_CONFIG")]
    config: PathBuf,
    /// The service whose baseline and candidate tables are compared.
    #[arg(long)]
    service: String,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Differing keys that carry both rows' values (every differing key is listed).
    #[arg(long, default_value_t = 20)]
    max_examples: usize,
}

fn bad(message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    EXIT_BAD_INPUT
}

pub fn run(args: &RowDiffArgs) -> u8 {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => return bad(e),
    };
    let Some(service) = config.services.iter().find(|s| s.name == args.service) else {
        let known: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
        return bad(format_args!(
            "{}: no service `{}` (configured: {})",
            args.config.display(),
            args.service,
            known.join(", ")
        ));
    };
    let Some(targets) = &service.targets else {
        return bad(format_args!(
            "{}: service `{}` has no [services.targets] table (see docs/rowdiff.md)",
            args.config.display(),
            service.name
        ));
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return bad(format_args!("cannot start the runtime: {e}")),
    };
    let json = args.format == Format::Json;
    match runtime.block_on(crate::rowdiff::cli_rowdiff(
        targets,
        &service.name,
        json,
        args.max_examples,
    )) {
        // A finished diff is 0 (equal) or 1 (differences); anything else would be a bug there.
        Ok(code) => u8::try_from(code).unwrap_or(EXIT_BAD_INPUT),
        Err(e) => bad(format_args!("service `{}`: {e:#}", service.name)),
    }
}
