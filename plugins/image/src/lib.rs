//! The image plugin (being written).
