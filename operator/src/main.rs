//! `secretflow-operator controller | bridge | crd`.
//!
//! `crd [task|pipeline]` prints the SecretFlowTask or SecretFlowPipeline CustomResourceDefinition generated from
//! the types in `secretflow-crds` (the committed `crds/*.yaml` are this output). `bridge` consumes the web container's Celery
//! queue (see [`secretflow_operator::bridge`]); `controller` reconciles SecretFlowTasks into party pods and
//! SecretFlowPipelines into step tasks (see [`secretflow_operator::controller`]).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use party_runtime::logging::LogFormat;
use secretflow_operator::bridge::{self, BridgeArgs};
use secretflow_operator::controller::run::{self as controller, ControllerArgs};

#[derive(Parser)]
#[command(name = "secretflow-operator", version, about = "SecretFlowTask operator, Celery bridge and CRD generator")]
struct Cli {
    /// Log lines on stderr as `text` or `json` (one object per line, for a log stack).
    #[arg(long, global = true, env = "SF_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a CRD as YAML: `task` (SecretFlowTask, the default) or `pipeline` (SecretFlowPipeline).
    Crd {
        /// Which CRD.
        #[arg(value_enum, default_value_t = CrdKind::Task)]
        kind: CrdKind,
    },
    /// Run the controller (reconciles SecretFlowTasks into party pods).
    Controller(Box<ControllerArgs>),
    /// Run the Celery bridge (Redis -> SecretFlowTasks or in-process runs).
    Bridge(Box<BridgeArgs>),
}

/// The CRDs `crd` prints.
#[derive(Clone, Copy, clap::ValueEnum)]
enum CrdKind {
    /// SecretFlowTask (`crds/secretflowtask.yaml`).
    Task,
    /// SecretFlowPipeline (`crds/secretflowpipeline.yaml`).
    Pipeline,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = cli.log_format;
    match cli.command {
        Command::Crd { kind } => {
            match kind {
                CrdKind::Task => print!("{}", secretflow_crds::crd::crd_yaml()),
                CrdKind::Pipeline => print!("{}", secretflow_crds::pipeline::crd_yaml()),
            }
            ExitCode::SUCCESS
        }
        Command::Controller(args) => serve("controller", format, controller::run(*args)),
        Command::Bridge(args) => serve("bridge", format, bridge::run(*args)),
    }
}

/// Run a long-lived subcommand on a multi-threaded runtime with logs on stderr.
fn serve(what: &str, format: LogFormat, job: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    party_runtime::logging::init(format, "info,party_runtime=warn,redis=warn");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("secretflow-operator: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(job) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("secretflow-operator {what}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
