//! Durations as people write and read them: `90s`, `15m`, `1h`, `2d`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::BadValue;

/// Seconds in a short human form: `42 s`, `7 min`, `5 h`, `3 days`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 2.0 * 86400.0 {
        format!("{:.0} h", s / 3600.0)
    } else {
        format!("{:.0} days", s / 86400.0)
    }
}

/// Reads `400ms`, `30s`, `15m`, `1h`, `2d` (or plain seconds) as seconds.
pub fn parse_duration(text: &str) -> Option<f64> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: f64 = n.parse().ok()?;
    let factor = match unit.trim() {
        "ms" => 0.001,
        "" | "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" | "day" | "days" => 86400.0,
        _ => return None,
    };
    Some(n * factor)
}

/// A duration given on the command line (`--max-lag 5m`): parsed where
/// clap reads it, so a bad one is refused with the flag's name; one too
/// long to represent is refused too, never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn get(self) -> Duration {
        self.0
    }

    pub fn seconds(self) -> f64 {
        self.0.as_secs_f64()
    }
}

impl FromStr for HumanDuration {
    type Err = BadValue;

    fn from_str(text: &str) -> Result<Self, BadValue> {
        parse_duration(text)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .map(HumanDuration)
            .ok_or_else(|| {
                BadValue::new(text, "write a duration such as 500ms, 90s, 15m, 1h or 2d")
            })
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&duration(self.seconds()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_print() {
        assert_eq!(parse_duration("1h"), Some(3600.0));
        assert_eq!(parse_duration("90"), Some(90.0));
        assert_eq!(parse_duration("15 min"), Some(900.0));
        assert_eq!(parse_duration("400ms"), Some(0.4));
        assert_eq!(parse_duration("2x"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(duration(42.4), "42 s");
        assert_eq!(duration(3.0 * 86400.0), "3 days");
        assert_eq!("2m".parse::<HumanDuration>().unwrap().get(), Duration::from_secs(120));
        let e = "1e400d".parse::<HumanDuration>().unwrap_err().to_string();
        assert!(e.ends_with("write a duration such as 500ms, 90s, 15m, 1h or 2d"), "{e}");
        assert!("99999999999999999999999d".parse::<HumanDuration>().is_err());
    }
}
