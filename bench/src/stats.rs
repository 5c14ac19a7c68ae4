//! Medians and percentiles of samples.

use serde_json::{Value, json};

/// The `p`th percentile (0–100) of `values`, interpolating linearly between
/// the two nearest ranks (numpy's default). `NaN` for no values.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile_of_sorted(&sorted, p)
}

/// The median of `values`: the middle one, or the mean of the middle two.
pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

fn percentile_of_sorted(sorted: &[f64], p: f64) -> f64 {
    match sorted {
        [] => f64::NAN,
        [only] => *only,
        _ => {
            let rank = p.clamp(0.0, 100.0) / 100.0 * (sorted.len() - 1) as f64;
            let low = rank.floor() as usize;
            let high = rank.ceil() as usize;
            sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
        }
    }
}

/// Distribution of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// How many samples.
    pub n: usize,
    /// The smallest.
    pub min: f64,
    /// 10th percentile.
    pub p10: f64,
    /// 50th percentile.
    pub median: f64,
    /// 90th percentile.
    pub p90: f64,
    /// The largest.
    pub max: f64,
}

impl Summary {
    /// Summarises `values`.
    pub fn of(values: &[f64]) -> Self {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Self {
            n: sorted.len(),
            min: sorted.first().copied().unwrap_or(f64::NAN),
            p10: percentile_of_sorted(&sorted, 10.0),
            median: percentile_of_sorted(&sorted, 50.0),
            p90: percentile_of_sorted(&sorted, 90.0),
            max: sorted.last().copied().unwrap_or(f64::NAN),
        }
    }

    /// As a JSON object with the field names above.
    pub fn to_json(&self) -> Value {
        json!({
            "n": self.n,
            "min": round(self.min),
            "p10": round(self.p10),
            "median": round(self.median),
            "p90": round(self.p90),
            "max": round(self.max),
        })
    }
}

/// `x` to three decimals, which is plenty for µs, ms and ratios.
pub fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let v: Vec<f64> = (1..=11).map(f64::from).collect(); // 1..=11
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 10.0), 2.0);
        assert_eq!(percentile(&v, 90.0), 10.0);
        assert_eq!(percentile(&v, 100.0), 11.0);
        // Between ranks: 1, 2, 3, 4 at p25 sits 3/4 of the way from 1 to 2.
        assert_eq!(percentile(&[4.0, 3.0, 2.0, 1.0], 25.0), 1.75);
    }

    #[test]
    fn summaries_do_not_depend_on_order() {
        let s = Summary::of(&[5.0, 1.0, 4.0, 2.0, 3.0]);
        assert_eq!((s.n, s.min, s.median, s.max), (5, 1.0, 3.0, 5.0));
        assert!((s.p10 - 1.4).abs() < 1e-9, "{s:?}");
        assert!((s.p90 - 4.6).abs() < 1e-9, "{s:?}");
        assert_eq!(s.to_json()["p90"], 4.6);
    }
}
