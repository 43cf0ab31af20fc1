//! Connection strings fit for printing: deed-text's rules, so a password
//! never shows whatever form it is written in.

pub use deed_text::redact_url;
