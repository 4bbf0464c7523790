//! Logging for the binaries, and the export of their tracing spans over OTLP/HTTP.
//!
//! The framework's model calls run in tracing spans that already use the OpenTelemetry GenAI
//! attribute names (`gen_ai.system`, `gen_ai.request.model`, `gen_ai.usage.input_tokens`, ...,
//! see `ann-llm-openai`). This crate turns a process's subscriber into:
//! - log lines on stderr, filtered by `RUST_LOG` (default `warn`), coloured only on a terminal and
//!   never when `NO_COLOR` is set ([`use_colour`]), so a log file holds plain text;
//! - optionally, every span sent as OTLP/HTTP protobuf to a collector ([`Settings::otlp_endpoint`]):
//!   Jaeger, Langfuse, Phoenix, MLflow or an OpenTelemetry Collector show each call with its model,
//!   tokens, latency and errors. Spans are batched on a thread of their own, so no model call waits
//!   for the collector; [`TelemetryGuard`] sends what is left when the program ends.
//!
//! A library never calls [`init`]: it only emits spans. The binary reads the environment (see
//! [`Settings::from_env`]) and passes the result here.
//!
//! ```
//! let settings = ann_telemetry::Settings { otlp_endpoint: None, ..ann_telemetry::Settings::new("my-tool") };
//! assert_eq!(settings.traces_url(), None); // no endpoint: log lines only, nothing exported
//! let with = ann_telemetry::Settings {
//!     otlp_endpoint: Some("http://127.0.0.1:4318".into()),
//!     ..ann_telemetry::Settings::new("my-tool")
//! };
//! assert_eq!(with.traces_url().as_deref(), Some("http://127.0.0.1:4318/v1/traces"));
//! ```

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The standard variable naming a collector's OTLP base URL (`/v1/traces` is appended).
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The standard variable naming the full traces URL (used as it is; wins over [`ENDPOINT_ENV`]).
pub const TRACES_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// The standard variable naming the service a collector files the spans under.
pub const SERVICE_NAME_ENV: &str = "OTEL_SERVICE_NAME";

/// Errors of setting telemetry up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built (e.g. an endpoint that is not a URL).
    #[error("OTLP exporter for {url}: {source}")]
    Exporter {
        url: String,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// A global subscriber was installed already.
    #[error("a tracing subscriber is already installed: {0}")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
}

/// What the process logs and where its spans go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The service name a collector shows (`service.name`).
    pub service_name: String,
    /// A collector's OTLP/HTTP base URL (e.g. `http://localhost:4318`); `None` exports nothing.
    pub otlp_endpoint: Option<String>,
    /// A full traces URL used as it is (e.g. Langfuse's `.../api/public/otel/v1/traces`); wins
    /// over `otlp_endpoint`.
    pub traces_endpoint: Option<String>,
    /// Which spans are exported, as an `EnvFilter` directive (default `info`: every model call).
    pub export_filter: String,
    /// Which log lines reach stderr, as an `EnvFilter` directive (`RUST_LOG`; default `warn`).
    pub log_filter: String,
    /// Whether log lines carry ANSI colours (see [`use_colour`]).
    pub colour: bool,
}

impl Settings {
    /// Log lines at `warn` without colour, nothing exported.
    pub fn new(service_name: &str) -> Self {
        Self {
            service_name: service_name.to_string(),
            otlp_endpoint: None,
            traces_endpoint: None,
            export_filter: "info".into(),
            log_filter: "warn".into(),
            colour: false,
        }
    }

    /// The settings the standard variables give: [`ENDPOINT_ENV`], [`TRACES_ENDPOINT_ENV`],
    /// [`SERVICE_NAME_ENV`] (default `default_service`), `RUST_LOG`, and colour when stderr is a
    /// terminal and `NO_COLOR` is unset. The exporter itself also reads
    /// `OTEL_EXPORTER_OTLP_HEADERS` (e.g. a collector's `Authorization`), which never reaches a span.
    pub fn from_env(default_service: &str) -> Self {
        let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        Self {
            service_name: var(SERVICE_NAME_ENV).unwrap_or_else(|| default_service.to_string()),
            otlp_endpoint: var(ENDPOINT_ENV),
            traces_endpoint: var(TRACES_ENDPOINT_ENV),
            export_filter: "info".into(),
            log_filter: var("RUST_LOG").unwrap_or_else(|| "warn".into()),
            colour: use_colour(std::io::IsTerminal::is_terminal(&std::io::stderr()), std::env::var_os("NO_COLOR")),
        }
    }

    /// The URL spans are posted to, if any: the traces endpoint as it is, else the base endpoint
    /// with `/v1/traces` appended (as the OTLP specification says for the base variable).
    pub fn traces_url(&self) -> Option<String> {
        if let Some(url) = &self.traces_endpoint {
            return Some(url.clone());
        }
        self.otlp_endpoint.as_ref().map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
    }
}

/// Whether log lines get colours: only on a terminal, and never when `NO_COLOR` is set to
/// anything (the `no-color.org` rule; an empty value counts as unset).
///
/// ```
/// use ann_telemetry::use_colour;
/// assert!(use_colour(true, None));
/// assert!(!use_colour(false, None)); // a pipe or a file: plain text
/// assert!(!use_colour(true, Some("1".into())));
/// ```
pub fn use_colour(is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Keeps the exporter alive; dropping it sends the spans still buffered and stops the exporter's
/// thread. Drop it outside any async runtime (at the end of `main`).
#[must_use = "dropping the guard stops the export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether spans are being exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Send the buffered spans now (a test's barrier; the drop does it too).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(e) = provider.force_flush()
        {
            eprintln!("warning: sending the last spans to the OTLP collector failed: {e}");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            self.flush();
            let _ = provider.shutdown();
        }
    }
}

/// A tracer provider exporting OTLP/HTTP protobuf to `url`, batched on its own thread.
pub fn otlp_provider(url: &str, service_name: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .build()
        .map_err(|source| TelemetryError::Exporter { url: url.to_string(), source })?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service_name.to_string()).build())
        .build())
}

/// The tracing layer that hands every span to `provider` (for a subscriber built by hand).
pub fn otlp_layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + use<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("agentic-nn")).with_location(false)
}

/// A subscriber with the settings' log lines and export, and the guard that ends the export.
/// Each part has its own filter, so `RUST_LOG=warn` keeps stderr quiet while every call's span
/// still reaches the collector.
pub fn subscriber(
    settings: &Settings,
) -> Result<(impl tracing::Subscriber + Send + Sync + use<>, TelemetryGuard), TelemetryError> {
    let provider = settings.traces_url().map(|url| otlp_provider(&url, &settings.service_name)).transpose()?;
    let export = provider.as_ref().map(|p| {
        otlp_layer(p)
            .with_filter(EnvFilter::try_new(&settings.export_filter).unwrap_or_else(|_| EnvFilter::new("info")))
    });
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(settings.colour)
        .with_filter(EnvFilter::try_new(&settings.log_filter).unwrap_or_else(|_| EnvFilter::new("warn")));
    let subscriber = tracing_subscriber::registry().with(logs).with(export);
    Ok((subscriber, TelemetryGuard { provider }))
}

/// Install [`subscriber`] for the whole process.
pub fn init(settings: &Settings) -> Result<TelemetryGuard, TelemetryError> {
    let (subscriber, guard) = subscriber(settings)?;
    subscriber.try_init()?;
    Ok(guard)
}

/// The README's example, run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
