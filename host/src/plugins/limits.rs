//! What one task of a plugin may use.

use std::time::Duration;

/// Limits of one conversion task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most memory, in bytes.
    pub memory: u64,
    /// Most wall-clock time.
    pub time: Duration,
    /// Largest output, in bytes.
    pub output: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory: 512 * 1024 * 1024,
            time: Duration::from_secs(60),
            output: 2 * 1024 * 1024 * 1024,
        }
    }
}
