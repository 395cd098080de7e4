//! Summaries of timing samples.

/// `d` in milliseconds.
#[must_use]
pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Appends one figure to `report`: `name` padded to `width`, then the
/// median and the min–max of `samples`, then `unit`.
///
/// # Errors
/// Never in practice (writing to a `String`).
pub fn line(report: &mut String, width: usize, name: &str, samples: &[f64], unit: &str) -> std::fmt::Result {
    use std::fmt::Write as _;
    let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let max = samples.iter().copied().fold(0.0, f64::max);
    let mid = median(samples).unwrap_or(f64::NAN);
    writeln!(report, "{name:<width$} {mid:>10.2} {:>20} {unit}", format!("{min:.2}–{max:.2}"))
}

/// The median of `samples` (the mean of the two middle ones for an even
/// count); `None` when there are none. NaN sorts last.
#[must_use]
pub fn median(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 })
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[4.0]), Some(4.0));
        assert_eq!(median(&[9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(&[7.0, 1.0, 3.0, 100.0]), Some(5.0));
        assert_eq!(median(&[2.0, 2.0, 1.0, 2.0, 50.0]), Some(2.0));
    }
}
