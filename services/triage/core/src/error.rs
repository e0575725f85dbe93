//! Errors of triage's core.

/// Errors of triage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `[triage]` configuration is invalid (poison: fix the config).
    #[error("invalid triage configuration: {0}")]
    Config(String),
}

/// Result alias of triage.
pub type Result<T, E = Error> = std::result::Result<T, E>;
