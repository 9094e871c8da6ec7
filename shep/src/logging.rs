//! The process's `tracing` subscriber: the log on stderr (`SHEP_LOG`,
//! `SHEP_LOG_SPANS`) and, for `shep serve` with `telemetry.otlp_endpoint`,
//! the OTLP exporter's layer beside it, each layer with its own filter (so
//! spans are exported while the log shows only warnings).

use std::io::IsTerminal as _;

use shep_gateway::telemetry::Telemetry;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// Installs the subscriber; once per process.
pub fn install(telemetry: Option<&Telemetry>) {
    // SHEP_LOG_SPANS=close also logs each span as it ends, with its time:
    // a trace of every message across its hops, in the log.
    let span_events = match std::env::var("SHEP_LOG_SPANS").as_deref() {
        Ok("close") => FmtSpan::CLOSE,
        Ok("full") => FmtSpan::FULL,
        _ => FmtSpan::NONE,
    };
    let log = tracing_subscriber::fmt::layer()
        .with_span_events(span_events)
        // Colours only for a terminal, not for a log file.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_filter(
            EnvFilter::try_from_env("SHEP_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        );
    // Without an endpoint there is no layer at all: nothing of OpenTelemetry
    // on the path of a message.
    tracing_subscriber::registry()
        .with(log)
        .with(telemetry.map(Telemetry::layer))
        .init();
}
