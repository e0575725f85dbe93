//! Errors of triage's core.

/// Errors of triage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `[triage]` configuration is invalid (poison: fix the config).
    #[error("invalid triage configuration: {0}")]
    Config(String),
    /// `triage.class_overrides[index].class` names no file class.
    #[error("invalid triage configuration: triage.class_overrides[{index}].class: {source}")]
    UnknownClass {
        /// The override's position in `triage.class_overrides`.
        index: usize,
        /// The class name and the names allowed.
        #[source]
        source: crate::classes::UnknownFileClass,
    },
}

/// Result alias of triage.
pub type Result<T, E = Error> = std::result::Result<T, E>;
