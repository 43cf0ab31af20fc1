//! Text fit to print. deed prints connection strings, log fields, file
//! contents and names from catalogs it does not control; none of it may
//! show a password, drive the terminal, or forge an output line.
//!
//! - [`redact_url`]: a connection string (URL or `key=value`) with every
//!   password replaced by `***`, however the password is written.
//! - [`redact_secrets`]: the same for every connection string inside a
//!   longer text (a manifest line quoted in an error).
//! - [`mask_secret_values`] and [`SecretLines`]: the value of every key
//!   named like a secret (`password`, `token`, `api_key`…) hidden in
//!   quoted TOML.
//! - [`printable`] and [`excerpt`]: control characters escaped, and long
//!   input cut short; [`snippet`]: a window of a long line around a column.
//! - [`HumanDuration`] and [`ByteSize`]: `90s` and `2GB` as people write
//!   them, read where the command line is read; [`plural`] and
//!   [`thousands`] for counts.

mod conninfo;
mod diff;
mod duration;
mod html;
mod printable;
mod redact;
mod secrets;
mod size;
mod value;

pub use conninfo::{parse_conninfo, percent_decode, write_conninfo};
pub use diff::line_diff;
pub use duration::{HumanDuration, duration, parse_duration};
pub use html::{escape_html, escape_markdown, html_with_code};
pub use printable::{
    and_list, excerpt, one_line, plural, printable, snippet, terminal_safe, thousands,
};
pub use redact::{redact_secrets, redact_url};
pub use secrets::{SecretLines, is_secret_key, mask_secret_values};
pub use size::{ByteSize, bytes_exact, bytes_pretty, parse_bytes};
pub use value::BadValue;
