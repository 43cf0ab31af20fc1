//! `deed generate`: typed, read-only models of the contract versions a
//! service reads and typed payloads of the events it consumes, from the
//! live catalog and the manifest, so consumers stop keeping hand-written
//! copies that drift.
//!
//! The pipeline is the plan's: [`choose`] what to generate from the
//! manifest, [`observe`] the live catalog into a [`Model`] (types resolved
//! through domains and arrays, nullability derived through each view from
//! its tables' NOT NULL constraints and joins, by `deed_sql::nullability`),
//! then [`render`] files for one language, a pure function of the model:
//! the same catalog and manifest give the same bytes, so
//! `deed generate --check` can gate CI.

mod catalog;
pub mod choose;
mod error;
pub mod files;
pub mod model;
pub mod observe;
pub mod render;

pub use choose::{Choice, choose};
pub use error::GenerateError;
pub use files::Staleness;
pub use model::Model;
pub use observe::observe;
pub use render::Files;

/// The languages and formats `deed generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Python,
    TypeScript,
    Rust,
    Go,
    JsonSchema,
    AsyncApi,
}

/// The files of `lang` for `model`; `service` names a one-service package.
pub fn render_files(model: &Model, lang: Lang, service: Option<&str>) -> Files {
    match lang {
        Lang::Python => {
            render::python::render(model, &render::python::PythonPackage::named(service))
        }
        Lang::TypeScript => render::typescript::render(model, service),
        Lang::Rust => render::rust::render(model, service),
        Lang::Go => render::go::render(model),
        Lang::JsonSchema => render::jsonschema::render(model),
        Lang::AsyncApi => render::asyncapi::render(model),
    }
}
