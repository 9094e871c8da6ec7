//! Why storage failed: the error of every backend behind
//! [`crate::storage`], which re-exports it. It lives here, beside
//! [`GatewayError`](super::GatewayError) which wraps it, so the error module
//! depends on nothing of storage (whose records name the envelope's types,
//! which fail with a `GatewayError`).

use std::error::Error;
use std::sync::Arc;

/// The cause of a backend failure, shared by every waiter of a group commit.
pub type Source = Arc<dyn Error + Send + Sync>;

/// Why storage failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// The backend could not do what was asked; `operation` says what.
    #[error("storage failed to {operation}")]
    Backend {
        operation: &'static str,
        #[source]
        source: Source,
    },
    /// The backend cannot be reached (a networked backend's server is down or
    /// cut off): nothing was stored; retry later.
    #[error("storage is unavailable: could not {operation}")]
    Unavailable {
        operation: &'static str,
        #[source]
        source: Source,
    },
    /// The backend was closed (or its writer died): nothing more is stored.
    #[error("the storage is closed")]
    Stopped,
    /// A journal record is not what was written.
    #[error("record {sequence}: {problem}")]
    Corrupt { sequence: u64, problem: Corruption },
    /// A journaled application cannot be rebuilt.
    #[error("journaled application `{message_id}` cannot be restored: {problem}")]
    Unrestorable {
        message_id: String,
        problem: &'static str,
        #[source]
        source: Option<Source>,
    },
    /// No application has this id.
    #[error("application `{message_id}` not found")]
    NotFound { message_id: String },
}

impl StorageError {
    /// A backend failure while doing `operation`.
    pub fn backend(
        operation: &'static str,
        source: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> Self {
        Self::Backend {
            operation,
            source: Arc::from(source.into()),
        }
    }
}

impl StorageError {
    /// The backend could not be reached while doing `operation`.
    pub fn unavailable(
        operation: &'static str,
        source: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> Self {
        Self::Unavailable {
            operation,
            source: Arc::from(source.into()),
        }
    }
}

/// What is wrong with a journal record.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Corruption {
    #[error("does not decode: {0}")]
    Undecodable(prost::DecodeError),
    #[error("stored under {stored_under} but says {says}")]
    Misplaced { stored_under: u64, says: u64 },
    #[error("follows record {previous}: a record is missing")]
    Gap { previous: u64 },
    #[error("does not link to the record before it")]
    Unlinked,
    #[error("its content does not match its hash (edited)")]
    Edited,
    #[error("no such record")]
    Absent,
}
