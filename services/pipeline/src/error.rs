//! The pipeline's errors.

/// Why the pipeline could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The triage configuration was rejected.
    #[error("triage configuration")]
    Triage(#[source] selfheal_triage::Error),
}

/// `Result` with the pipeline's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
