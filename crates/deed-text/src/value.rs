//! A value given on the command line or in a setting that could not be
//! read: the text as given (printable) and what to write instead.

use std::fmt;

/// `"2XB": write a size such as 64KB, 512MB or 2GB`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadValue {
    text: String,
    expected: &'static str,
}

impl BadValue {
    pub fn new(text: &str, expected: &'static str) -> Self {
        BadValue { text: crate::excerpt(text, 80), expected }
    }
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\": {}", self.text, self.expected)
    }
}

impl std::error::Error for BadValue {}
