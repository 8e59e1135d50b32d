//! Log set-up shared by the binaries (`party-runtime`, `secretflow-operator controller | bridge`): human text on
//! stderr by default, or one JSON object per line (`--log-format json`, tracing-subscriber's JSON output) for a
//! cluster's log stack to index. `RUST_LOG` filters; `default_filter` applies without it.

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable text (ANSI colours on a terminal).
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, target, fields and span.
    Json,
}

/// Install the global subscriber writing to stderr in `format`.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => builder.json().with_current_span(true).init(),
    }
}
