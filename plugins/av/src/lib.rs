//! The av plugin (being written).
