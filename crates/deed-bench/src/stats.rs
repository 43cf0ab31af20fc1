//! The arithmetic every benchmark reports with.

use std::time::Duration;

/// The median (the upper one of an even count); `v` must not be empty.
pub fn median<T: PartialOrd + Copy>(v: &[T]) -> T {
    let mut sorted = v.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    sorted[sorted.len() / 2]
}

/// Milliseconds, for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn medians() {
        assert_eq!(super::median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(&[4, 1, 3, 2]), 3);
    }
}
