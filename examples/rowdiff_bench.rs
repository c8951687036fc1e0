//! Runs the exhaustive row diff the way `paritygate rowdiff --format json` will, for the
//! benchmark script (`scripts/bench-rowdiff`) until the subcommand is wired in the CLI.
//!
//! Usage: `rowdiff_bench <baseline table> <candidate table> <key,columns> [ignore,columns]`
//! with the URLs in `PG_BASELINE_URL` / `PG_CANDIDATE_URL`. Prints the JSON report; exits 0/1/2
//! like the subcommand.

use paritygate::rowdiff::config::{OnSchemaDifference, SampleConfig, SideTarget};
use paritygate::rowdiff::{cli_rowdiff, TargetsConfig};

fn list(arg: Option<&String>) -> Vec<String> {
    arg.map(|s| {
        s.split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: rowdiff_bench <baseline table> <candidate table> <keys> [ignore]");
        std::process::exit(2);
    }
    let targets = TargetsConfig {
        baseline: SideTarget {
            url_env: "PG_BASELINE_URL".into(),
            table: args[0].clone(),
        },
        candidate: SideTarget {
            url_env: "PG_CANDIDATE_URL".into(),
            table: args[1].clone(),
        },
        key_columns: list(args.get(2)),
        ignore_columns: list(args.get(3)),
        on_schema_difference: OnSchemaDifference::Error,
        statement_timeout_secs: 300.0,
        sample: SampleConfig::default(),
    };
    match cli_rowdiff(&targets, "bench", true, 5).await {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("rowdiff_bench: {e:#}");
            std::process::exit(2);
        }
    }
}
