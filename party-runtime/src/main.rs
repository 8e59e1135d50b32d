//! `party-runtime run REQUEST.json`: run a Worker-API request and print its execution result as JSON.
//!
//! Exit status: 0 on success, 1 when the task failed (the error JSON is still printed), 2 on a usage error.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use party_runtime::context::{NoProgress, ProgressSink};
use party_runtime::data::{DataPolicy, atomic_write};
use party_runtime::link::grpc::TlsMaterial;
use party_runtime::logging::LogFormat;
use party_runtime::progress::TerminalProgress;
use party_runtime::report::{KubeReporter, result_holder};
use party_runtime::{RunOptions, run_request_with_blame};
use secretflow_crds::result::ExecStatus;
use secretflow_crds::{ErrorInfo, ErrorType, ExecutionResult};

#[derive(Parser)]
#[command(name = "party-runtime", version, about = "Run SecretFlow Worker-API tasks as one or all parties")]
struct Cli {
    /// Log lines on stderr as `text` or `json` (one object per line, for a log stack).
    #[arg(long, global = true, env = "SF_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a Worker-API request (JSON file) and print the execution result.
    Run {
        /// The request file.
        request: PathBuf,
        /// Cluster mode: the party this process runs (default: the request's `self_party`).
        #[arg(long)]
        party: Option<String>,
        /// Confine data paths to these folders (repeatable; `SF_DATA_ROOTS` is colon-separated).
        #[arg(long = "data-root", env = "SF_DATA_ROOTS", value_delimiter = ':')]
        data_roots: Vec<PathBuf>,
        /// Also write the result JSON to this file.
        #[arg(long)]
        output: Option<PathBuf>,
        /// Seconds a party waits for a peer's message before failing.
        #[arg(long, default_value_t = 60)]
        link_timeout: u64,
        /// No progress bars.
        #[arg(long, short)]
        quiet: bool,
        /// Cluster mode: this party's TLS certificate (PEM); with --tls-key and --tls-ca, the link uses mutual TLS.
        #[arg(long, env = "SF_LINK_TLS_CERT", requires_all = ["tls_key", "tls_ca"])]
        tls_cert: Option<PathBuf>,
        /// Its private key (PEM).
        #[arg(long, env = "SF_LINK_TLS_KEY", requires_all = ["tls_cert", "tls_ca"])]
        tls_key: Option<PathBuf>,
        /// The CA certificate every party's certificate must chain to (PEM).
        #[arg(long, env = "SF_LINK_TLS_CA", requires_all = ["tls_cert", "tls_key"])]
        tls_ca: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    party_runtime::logging::init(cli.log_format, "warn");
    tracing::info!(cpu = %party_runtime::cpu::cpu().describe(), "code paths");
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("party-runtime: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let Command::Run { request, party, data_roots, output, link_timeout, quiet, tls_cert, tls_key, tls_ca } =
        cli.command;
    let tls = match (tls_cert, tls_key, tls_ca) {
        (Some(cert), Some(key), Some(ca)) => match load_tls(&cert, &key, &ca) {
            Ok(t) => Some(t),
            Err(info) => return print_result(&ExecutionResult::failure(info), None),
        },
        _ => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // Inside a party pod: report into the SecretFlowTask status.
    let reporter = match rt.block_on(KubeReporter::from_env()) {
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "no Kubernetes client; not reporting to the task status");
            None
        }
        None => None,
    };
    let terminal = (!quiet && std::io::stderr().is_terminal()).then(|| Arc::new(TerminalProgress::new()));
    let progress: Arc<dyn ProgressSink> = match (&terminal, &reporter) {
        (Some(t), _) => t.clone(),
        (None, Some(r)) => {
            let _guard = rt.enter();
            r.progress()
        }
        (None, None) => Arc::new(NoProgress),
    };
    let opts = RunOptions {
        party,
        data: DataPolicy::new(data_roots),
        link_timeout: Duration::from_secs(link_timeout),
        progress,
        tls,
    };
    let result = match std::fs::read_to_string(&request) {
        Ok(json) => rt.block_on(async {
            if let Some(r) = &reporter {
                r.started().await;
            }
            let (result, blamed) = run_request_with_blame(&json, &opts).await;
            if let Some(r) = &reporter {
                let me = opts.party.clone().or_else(|| std::env::var("SF_PARTY").ok());
                // The operator names the holder among the parties it runs (`SF_RESULT_HOLDER`).
                let holder = std::env::var("SF_RESULT_HOLDER")
                    .ok()
                    .filter(|h| !h.is_empty())
                    .or_else(|| serde_json::from_str(&json).ok().and_then(|v| result_holder(&v)));
                r.finished(&result, holder.is_some() && holder == me, blamed.as_deref()).await;
            }
            result
        }),
        Err(e) => {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                ErrorType::FileNotFoundError
            } else {
                ErrorType::PermissionError
            };
            ExecutionResult::failure(ErrorInfo::new(kind, format!("request file {}: {e}", request.display())))
        }
    };
    if let Some(t) = terminal {
        t.finish();
    }
    print_result(&result, output)
}

/// Print the result JSON (and write it to `output`); the exit status follows the result.
fn print_result(result: &ExecutionResult, output: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let text = serde_json::to_string_pretty(result)?;
    println!("{text}");
    if let Some(out) = output {
        atomic_write("-", &out, |f| {
            use std::io::Write;
            f.write_all(text.as_bytes()).map_err(|e| party_runtime::Error::Internal(format!("{}: {e}", out.display())))
        })?;
    }
    Ok(if result.status == ExecStatus::Success { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Read the TLS files; a missing or unreadable one is a FileNotFoundError / PermissionError naming it.
fn load_tls(cert: &Path, key: &Path, ca: &Path) -> Result<TlsMaterial, ErrorInfo> {
    let read = |p: &Path, flag: &str| {
        std::fs::read(p).map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                ErrorType::FileNotFoundError
            } else {
                ErrorType::PermissionError
            };
            ErrorInfo::new(kind, format!("{flag} {}: {e}", p.display()))
        })
    };
    Ok(TlsMaterial {
        cert_pem: read(cert, "--tls-cert")?,
        key_pem: read(key, "--tls-key")?,
        ca_pem: read(ca, "--tls-ca")?,
    })
}
