//! Why a conversion failed: [`ConvertError`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kind of a [`ConvertError`]; each maps to one API error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The plugin does not convert this pair.
    Unsupported,
    /// The options cannot be honoured.
    InvalidOptions,
    /// The input is not a valid file of its format.
    MalformedInput,
    /// A limit was reached (dimensions, duration, output size).
    LimitExceeded,
    /// Anything else; the message is logged, not shown to clients.
    Internal,
}

/// A failed conversion: what kind of failure, and a message saying what to change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvertError {
    /// The kind.
    pub kind: ErrorKind,
    /// For people: lowercase, no trailing period, saying what was wrong.
    pub message: String,
}

impl ConvertError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The pair is not converted by this plugin.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// The options cannot be honoured.
    pub fn invalid_options(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidOptions, message)
    }

    /// The input is broken.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::MalformedInput, message)
    }

    /// A limit was reached.
    pub fn limit(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::LimitExceeded, message)
    }

    /// Anything else.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for ConvertError {}

impl From<std::io::Error> for ConvertError {
    /// Writing the output failed (past the host's cap, writes fail): a limit; anything else
    /// reading or writing: internal.
    fn from(error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::StorageFull || error.to_string().contains("limit") {
            Self::limit(format!("the output is too large: {error}"))
        } else {
            Self::internal(format!("i/o failed: {error}"))
        }
    }
}
