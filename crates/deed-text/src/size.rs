//! Byte counts as people write and read them: `512MB`, `2GB`, `1.5G`,
//! `64KiB` or plain bytes in; `64 MiB` (exact) or `1.5 kB` (like
//! PostgreSQL's `pg_size_pretty`) out. Every unit is a power of 1024, as
//! PostgreSQL's settings use them.

use std::fmt;
use std::str::FromStr;

use crate::BadValue;

/// Reads `512MB`, `2GB`, `1.5G`, `64KiB`, `1048576` (bytes); `k`, `m`, `g`
/// and `t`, with or without `b` or `ib`, in any case, are powers of 1024.
/// None for anything else, a negative size, or one past `u64`.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    if let Ok(n) = number.parse::<u64>() {
        return n.checked_mul(1 << shift);
    }
    let n: f64 = number.parse().ok()?;
    let bytes = (n * (1u64 << shift) as f64).round();
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// Exact, in the largest unit that divides it: `64 MiB`, `1536 bytes`.
pub fn bytes_exact(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// One decimal, in powers of 1024 like `pg_size_pretty`: `1.5 kB`.
pub fn bytes_pretty(n: i64) -> String {
    let units = ["bytes", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v.abs() >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} bytes") } else { format!("{v:.1} {}", units[u]) }
}

/// A size given on the command line (`--max-retained-wal 2GB`): parsed
/// where clap reads it, so a bad one is refused with the flag's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = BadValue;

    fn from_str(text: &str) -> Result<Self, BadValue> {
        parse_bytes(text)
            .map(ByteSize)
            .ok_or_else(|| BadValue::new(text, "write a size such as 64KB, 512MB or 2GB"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bytes_exact(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_and_print() {
        assert_eq!(parse_bytes("512MB"), Some(512 << 20));
        assert_eq!(parse_bytes("2gb"), Some(2 << 30));
        assert_eq!(parse_bytes("64 KiB"), Some(64 << 10));
        assert_eq!(parse_bytes("1048576"), Some(1 << 20));
        assert_eq!(parse_bytes("1.5G"), Some(3 << 29));
        assert_eq!(parse_bytes("250M"), Some(250 << 20));
        assert_eq!(parse_bytes("2 GB"), Some(2 << 30));
        for bad in
            ["", "MB", "12 parsecs", "-1MB", "2XB", "1.2.3G", "99999999999999999999", "17000000T"]
        {
            assert_eq!(parse_bytes(bad), None, "{bad:?}");
        }
        assert_eq!(bytes_exact(64 << 20), "64 MiB");
        assert_eq!(bytes_exact(1536), "1536 bytes");
        assert_eq!(bytes_pretty(1536), "1.5 kB");
        assert_eq!(bytes_pretty(12), "12 bytes");
        let e = "2XB".parse::<ByteSize>().unwrap_err().to_string();
        assert_eq!(e, "\"2XB\": write a size such as 64KB, 512MB or 2GB");
    }
}
