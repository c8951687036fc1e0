//! The command line: `paritygate <subcommand>`. Each subcommand lives in its own file; this one
//! parses arguments and maps outcomes to exit codes (0 pass, 1 fail, 3 pending, 2 bad usage,
//! config or input).

mod bench;
mod diff;
mod fixtures;
mod gate;
mod generate;
mod render;
mod rowdiff;
mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit status for bad usage, config or input.
pub const EXIT_BAD_INPUT: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "paritygate",
    version,
    about = "Decides, with evidence, whether a pipeline may be cut over from Redpanda Connect to Bento"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay captured topic dumps of both runtimes and report parity.
    Diff(diff::DiffArgs),
    /// Run the live dual-run comparison: consume both runtimes' topics, keep state in Postgres,
    /// serve verdicts over HTTP.
    Serve(serve::ServeArgs),
    /// Compare the baseline and candidate sink tables of a service exhaustively.
    Rowdiff(rowdiff::RowDiffArgs),
    /// Ask a running `paritygate serve` for a service's gate verdict (exit 0 pass/warn, 1 fail,
    /// 3 pending or timed out), optionally waiting for it to be decided.
    Gate(gate::GateArgs),
    /// Apply the database migrations and exit.
    Migrate(serve::ServeArgs),
    /// Measure throughput and memory: `bench [diff]` (engine vs. reading the captures) or
    /// `bench serve` (the live service vs. a bare Kafka consumer).
    Bench(bench::BenchArgs),
    /// Live dual-run traffic: CDC-shaped streams to both runtimes' topics and the changes both
    /// sinks would make to their target tables, with chosen drift, at a chosen rate.
    Generate(generate::GenerateArgs),
    /// Regenerate the checked-in fixtures, or write a large capture pair.
    Fixtures(fixtures::FixturesArgs),
    #[command(hide = true)]
    BenchEngine(bench::EngineArgs),
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version with exit 0 and usage errors with exit 2, as we want.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_BAD_INPUT } else { 0 });
        }
    };
    let code = match cli.command {
        Command::Diff(args) => diff::run(&args),
        Command::Serve(args) => serve::serve(&args),
        Command::Migrate(args) => serve::migrate(&args),
        Command::Rowdiff(args) => rowdiff::run(&args),
        Command::Gate(args) => gate::run(&args),
        Command::Bench(args) => edge(bench::run(&args)),
        Command::Fixtures(args) => edge(fixtures::run(&args)),
        Command::Generate(args) => edge(generate::run(&args)),
        Command::BenchEngine(args) => edge(bench::engine(&args)),
    };
    ExitCode::from(code)
}

/// Whether to draw progress: only for a person at a terminal, never in CI.
pub(crate) fn interactive_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// Commands whose errors are only reported (anyhow at the edge): 0 on success, 2 on error.
fn edge(result: anyhow::Result<()>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            EXIT_BAD_INPUT
        }
    }
}
