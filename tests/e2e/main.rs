//! Cross-component tests, one binary (ripgrep style). Each module says what belongs in it.

// Test helpers (not only #[test] functions) may unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

// Every example request runs and matches the committed pandas/sklearn reference results and tables.
mod examples_reference;

// SecretFlowTasks through the real controller loop, party pods as party-runtime processes.
mod operator;

// One task across two organisations' clusters: two API servers, two operators, mutual TLS with two CAs.
mod two_clusters;

// SecretFlowPipelines: the example DAG to its evaluation, a failing step, validation and the immutable spec.
mod pipeline;

// The SecretFlowTask examples in examples/k8s: current, and each runs to the local result.
mod k8s_examples;

// /metrics and JSON logs of the operator; the stand-in API server's schema pruning, validation and 409s.
mod observability;

// The Helm chart: CRD identical to the generated one, values consistent with the templates, least-privilege RBAC.
mod chart;
