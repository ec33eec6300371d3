//! The load runs of one mode, and the medians and ranges the tables show.

use hdrhistogram::Histogram;

use crate::report::Report;
use crate::stats::new_hist;

/// All load runs of one mode.
pub struct ModeRuns {
    /// `binary`, `json`, `binary+tls`, `json+tls`.
    pub mode: String,
    /// One report per repeat.
    pub runs: Vec<Report>,
}

impl ModeRuns {
    /// Median over the runs of `f`.
    pub fn median(&self, f: impl Fn(&Report) -> f64) -> f64 {
        median(self.runs.iter().map(f).collect())
    }

    /// Min and max over the runs of `f`.
    pub fn range(&self, f: impl Fn(&Report) -> f64) -> (f64, f64) {
        let v: Vec<f64> = self.runs.iter().map(f).collect();
        (v.iter().copied().fold(f64::INFINITY, f64::min), v.iter().copied().fold(f64::NEG_INFINITY, f64::max))
    }

    /// All runs' histograms added together (`which` picks one).
    pub fn merged(&self, which: impl Fn(&Report) -> &Histogram<u64>) -> Histogram<u64> {
        let mut h = new_hist();
        for r in &self.runs {
            // Same bounds everywhere: cannot fail.
            let _ = h.add(which(r));
        }
        h
    }
}

/// Median of `v` (mean of the middle two for an even count; 0 when empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }
}
