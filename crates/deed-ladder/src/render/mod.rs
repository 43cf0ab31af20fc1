mod facts;
mod html;
mod table;

pub use html::html;
pub use table::{json, markdown, table};
