//! Logging: human-readable lines by default, one JSON object per line with `--log-format
//! json`. Everything goes to standard error; standard output is left to command output.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// How log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable, coloured when standard error is a terminal.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Installs the global logger. `filter` is a level (`info`) or directives
/// (`metamorph=debug,warp=warn`).
pub fn init(format: LogFormat, filter: &str) -> Result<(), String> {
    let filter = EnvFilter::try_new(filter).map_err(|error| {
        format!(
            "invalid log filter `{filter}`: {error}; use a level such as `info` or \
             directives such as `metamorph=debug,info`"
        )
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE)
        // A log write that fails (the reader of stderr went away) must not be reported on
        // stderr again: that panics, and the service would abort instead of serving on.
        .log_internal_errors(false);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    installed.map_err(|error| format!("cannot install the logger: {error}"))?;
    // Panics anywhere (a handler, a background task) are logged like everything else, with
    // the request id of the span they happened in.
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(ToString::to_string).unwrap_or_default();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("non-string panic payload");
        tracing::error!(panic = payload, location, "panic");
    }));
    Ok(())
}
