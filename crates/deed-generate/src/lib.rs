//! `deed generate`: typed, read-only models of the contract versions a
//! service reads and typed payloads of the events it consumes, from the
//! live catalog and the manifest.

pub mod model;
