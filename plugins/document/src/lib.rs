//! The document plugin (being written).
