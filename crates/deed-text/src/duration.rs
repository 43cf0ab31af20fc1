//! Durations as people write and read them: `90s`, `15m`, `1h`, `2d`.

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
    }
}
