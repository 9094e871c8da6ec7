//! OTLP export of the gateway's spans (`telemetry.otlp_endpoint`): the
//! exporter, the `tracing` layer that feeds it, and the W3C `traceparent`
//! a caller's request carries.
//!
//! The layer is process-wide like the `tracing` subscriber it joins, so
//! whether a request's trace context is read is too: [`Telemetry::layer`]
//! turns it on, and until then reading it costs one atomic load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tonic::metadata::{KeyRef, MetadataMap};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::registry::LookupSpan;

use crate::config::TelemetryConfig;

/// Set once the layer is built: only then is a request's `traceparent` read.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// How long the last spans may take to reach the collector at shutdown.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The tracer provider that exports to the collector.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// The exporter `config` asks for, or `None` when `otlp_endpoint` is
    /// absent. Needs a Tokio runtime (the gRPC channel's worker). The
    /// collector is connected lazily: one that is not there yet or goes away
    /// costs failed exports (logged by the SDK), never a refused start.
    pub fn start(config: &TelemetryConfig) -> anyhow::Result<Option<Self>> {
        let Some(endpoint) = &config.otlp_endpoint else {
            return Ok(None);
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|error| anyhow::anyhow!("`telemetry.otlp_endpoint` `{endpoint}`: {error}"))?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(config.service_name.clone())
            .build();
        // The batch processor queues spans on the hot path and sends them from
        // its own thread; a full queue (a slow or absent collector) drops.
        // Its delay and sizes follow the standard OTEL_BSP_* variables.
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                config.sampling_ratio,
            ))))
            .with_resource(resource)
            .build();
        Ok(Some(Self { provider }))
    }

    /// The layer for the process's `tracing` subscriber: the gateway's spans
    /// at info and up (each message and its registry lookups), with warnings
    /// and errors inside them as span events, whatever `SHEP_LOG` shows.
    /// Install it: from now on requests' trace context is read.
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        EXPORTING.store(true, Ordering::Relaxed);
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("shep-gateway"))
            // Attributes a trace viewer already shows, or that say nothing
            // about a message (which worker thread ran it).
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            // Nothing else here reads the active OpenTelemetry context.
            .with_context_activation(false)
            .with_filter(filter_fn(|metadata| {
                metadata.target().starts_with("shep_")
                    && if metadata.is_span() {
                        *metadata.level() <= tracing::Level::INFO
                    } else {
                        *metadata.level() <= tracing::Level::WARN
                    }
            }))
    }

    /// Sends the spans still queued and stops the exporter, waiting at most
    /// a few seconds for the collector. Blocks: call it off the async workers.
    pub fn shutdown(&self) -> anyhow::Result<()> {
        self.provider
            .shutdown_with_timeout(FLUSH_TIMEOUT)
            .map_err(|error| anyhow::anyhow!("flushing the OTLP exporter: {error}"))
    }
}

/// The caller's trace context from a request's `traceparent` (and
/// `tracestate`), when spans are exported and the header is valid.
pub(crate) fn remote_parent(metadata: &MetadataMap) -> Option<opentelemetry::Context> {
    use opentelemetry::trace::TraceContextExt as _;
    if !EXPORTING.load(Ordering::Relaxed) || !metadata.contains_key("traceparent") {
        return None;
    }
    let context = TraceContextPropagator::new().extract(&Headers(metadata));
    context.has_active_span().then_some(context)
}

/// A request's metadata as the propagator reads it.
struct Headers<'a>(&'a MetadataMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|key| match key {
                KeyRef::Ascii(key) => Some(key.as_str()),
                KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_is_read_only_while_spans_are_exported() {
        use opentelemetry::trace::TraceContextExt as _;
        let mut metadata = MetadataMap::new();
        metadata.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        EXPORTING.store(false, Ordering::Relaxed);
        assert!(remote_parent(&metadata).is_none());
        EXPORTING.store(true, Ordering::Relaxed);
        let context = remote_parent(&metadata).expect("a remote parent");
        let span = context.span();
        let parent = span.span_context();
        assert!(parent.is_remote() && parent.is_sampled());
        assert_eq!(
            parent.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(parent.span_id().to_string(), "00f067aa0ba902b7");
        metadata.insert("traceparent", "00-garbage".parse().unwrap());
        assert!(remote_parent(&metadata).is_none());
        assert!(remote_parent(&MetadataMap::new()).is_none());
    }
}
