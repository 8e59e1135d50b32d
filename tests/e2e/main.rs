//! Cross-component tests, one binary (ripgrep style). Each module says what belongs in it.

// Every example request runs and matches the committed pandas/sklearn reference results and tables.
mod examples_reference;
