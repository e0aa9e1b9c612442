//! The contract between Metamorph and its converter plugins.
//!
//! Everything a converter and the host must agree on lives here, so that a plugin crate
//! depends on this crate alone. Today that is the vocabulary of formats: the canonical,
//! lowercase names ([`FormatName`]) under which plugins declare what they convert and
//! under which API clients ask for a target (`"PDF"`, `".pdf"` and `"pdf"` are one format;
//! `jpeg` is `jpg`).

#![warn(missing_docs)]

pub mod format;

pub use format::{FormatName, FormatNameError};
