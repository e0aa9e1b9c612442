//! The data plugin (being written).
