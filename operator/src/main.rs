//! `secretflow-operator controller | bridge | crd`.
//!
//! `crd` prints the SecretFlowTask CustomResourceDefinition generated from the types in `secretflow-crds`
//! (the committed `crds/secretflowtask.yaml` is this output). `bridge` consumes the web container's Celery
//! queue (see [`secretflow_operator::bridge`]); `controller` reconciles SecretFlowTasks into party pods
//! (see [`secretflow_operator::controller`]).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secretflow_operator::bridge::{self, BridgeArgs};
use secretflow_operator::controller::run::{self as controller, ControllerArgs};

#[derive(Parser)]
#[command(name = "secretflow-operator", version, about = "SecretFlowTask operator, Celery bridge and CRD generator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the SecretFlowTask CRD as YAML.
    Crd,
    /// Run the controller (reconciles SecretFlowTasks into party pods).
    Controller(Box<ControllerArgs>),
    /// Run the Celery bridge (Redis -> SecretFlowTasks or in-process runs).
    Bridge(Box<BridgeArgs>),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Crd => {
            print!("{}", secretflow_crds::crd::crd_yaml());
            ExitCode::SUCCESS
        }
        Command::Controller(args) => serve("controller", controller::run(*args)),
        Command::Bridge(args) => serve("bridge", bridge::run(*args)),
    }
}

/// Run a long-lived subcommand on a multi-threaded runtime with logs on stderr.
fn serve(what: &str, job: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,party_runtime=warn,redis=warn".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
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
