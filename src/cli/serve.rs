//! `paritygate serve` and `paritygate migrate`: the live service's edges (runtime, logging, exit codes).

use super::EXIT_BAD_INPUT;
use crate::config::Config;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The config file; `PARITYGATE_…` environment variables override it.
    #[arg(long, short, env = "PARITYGATE_CONFIG")]
    config: PathBuf,
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// Logs on stderr: `PARITYGATE_LOG` filters (default `info`), `PARITYGATE_LOG_FORMAT` = `text`
/// (default) or `json` (one object per line, for log shippers).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PARITYGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,rdkafka=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let format = std::env::var("PARITYGATE_LOG_FORMAT").unwrap_or_default();
    let _ = match format.as_str() {
        "json" => builder.json().flatten_event(true).try_init(),
        "" | "text" => builder.try_init(),
        other => {
            let init = builder.try_init();
            tracing::warn!(
                value = other,
                "PARITYGATE_LOG_FORMAT is `text` or `json`; using text"
            );
            init
        }
    };
}

fn load(path: &std::path::Path) -> Result<Config, u8> {
    Config::load_with_env(path).map_err(|e| {
        eprintln!("error: {e}");
        EXIT_BAD_INPUT
    })
}

pub fn serve(args: &ServeArgs) -> u8 {
    init_logging();
    let config = match load(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = runtime().map_err(|e| e.to_string()).and_then(|rt| {
        rt.block_on(crate::app::run(config))
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

pub fn migrate(args: &ServeArgs) -> u8 {
    init_logging();
    let config = match load(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(url) = config.store.url.clone() else {
        eprintln!("error: set [store] url or PARITYGATE_STORE_URL");
        return EXIT_BAD_INPUT;
    };
    let result = runtime().map_err(|e| e.to_string()).and_then(|rt| {
        rt.block_on(async {
            let store = crate::store::Store::connect_lazy(&url, 1)?;
            store.migrate().await
        })
        .map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => {
            println!("migrations applied");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
