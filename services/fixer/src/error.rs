//! The fixer's errors. Each says what was attempted; [`Error::is_retryable`]
//! decides whether an executor tries again.

/// Errors of executors and dispatchers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A template or setting is unusable; fix the configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// A value refused for substitution into a command (untrusted or malformed).
    #[error("refused to substitute {placeholder}={value:?}: {why}")]
    Unsafe {
        /// The placeholder.
        placeholder: String,
        /// The offending value (debug-quoted).
        value: String,
        /// Why it was refused.
        why: &'static str,
    },
    /// A process could not be started.
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// A process exited unsuccessfully.
    #[error("`{program}` exited with {status}: {output}")]
    Exit {
        /// The program.
        program: String,
        /// Its exit status.
        status: String,
        /// The tail of its output, scrubbed.
        output: String,
    },
    /// Something took longer than allowed.
    #[error("{what} timed out after {ms} ms")]
    Timeout {
        /// What was running.
        what: String,
        /// The limit.
        ms: u64,
    },
    /// An HTTP request failed before a response arrived.
    #[error("{what}: {source}")]
    Transport {
        /// What was being requested.
        what: String,
        /// The client error.
        #[source]
        source: reqwest::Error,
    },
    /// An HTTP endpoint answered with an error status.
    #[error("{what}: HTTP {status}: {body}")]
    Status {
        /// What was being requested.
        what: String,
        /// The status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// A response could not be understood.
    #[error("{what}: unexpected response: {why}")]
    Response {
        /// What was being requested.
        what: String,
        /// What was wrong with it.
        why: String,
    },
    /// A git operation failed.
    #[error("git {operation}: {message}")]
    Git {
        /// The operation (`worktree add`, `push` …).
        operation: String,
        /// What git said.
        message: String,
    },
    /// Local file IO failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether trying again later may succeed (timeouts, connection errors, 5xx,
    /// 429, a failed command), as opposed to a refusal or a configuration error.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Timeout { .. } | Error::Transport { .. } | Error::Exit { .. } => true,
            Error::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
