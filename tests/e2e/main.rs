//! Cross-component tests, one binary (ripgrep style). Each module says what belongs in it.

// Test helpers (not only #[test] functions) may unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

// Every example request runs and matches the committed pandas/sklearn reference results and tables.
mod examples_reference;

// A stand-in Kubernetes API server and kubelet for the operator tests.
mod k8s;

// SecretFlowTasks through the real controller loop, party pods as party-runtime processes.
mod operator;
