//! The `shep` command: parse arguments, set up logging, run.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = shep::cli::Cli::parse();
    // SHEP_LOG_SPANS=close also logs each span as it ends, with its time:
    // a trace of every message across its hops, in the log.
    let span_events = match std::env::var("SHEP_LOG_SPANS").as_deref() {
        Ok("close") => FmtSpan::CLOSE,
        Ok("full") => FmtSpan::FULL,
        _ => FmtSpan::NONE,
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("SHEP_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_span_events(span_events)
        // Colours only for a terminal, not for a log file.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match shep::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
