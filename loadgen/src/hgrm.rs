//! The `.hgrm` percentile distribution: the text format of HdrHistogram's Java
//! `AbstractHistogram.outputPercentileDistribution`, which wrk2 prints and the HdrHistogram
//! plotter reads.
//!
//! ```text
//!        Value     Percentile TotalCount 1/(1-Percentile)
//!
//!        1.000 0.000000000000          1           1.00
//!        ...
//!        4.002 1.000000000000          4
//! #[Mean    =        2.500, StdDeviation   =        1.118]
//! #[Max     =        4.002, Total count    =            4]
//! #[Buckets =           22, SubBuckets     =         2048]
//! ```
//!
//! Values are divided by `unit_ratio` (1e6 turns our nanoseconds into milliseconds, as wrk2 and the
//! plotter expect) and printed with as many decimals as the histogram has significant digits.

use hdrhistogram::Histogram;
use std::fmt::Write;

/// Renders `h` with `ticks_per_half_distance` percentile steps per halving (Java's default is 5),
/// values divided by `unit_ratio`.
///
/// The percentile walk is Java's `PercentileIterator`, step for step, with levels kept in percent
/// as Java does (so 0.1 + 0.1 + 0.1 lands where Java lands): at each recorded value, report every
/// level the running count has reached, then raise the level by `100 / (ticks * 2^(halvings+1))`;
/// after the first report at the last value, jump to 100%.
pub fn render(h: &Histogram<u64>, unit_ratio: f64, ticks_per_half_distance: u32) -> String {
    let d = h.sigfig() as usize;
    let mut out = String::new();
    // Writing to a String cannot fail, so the results below are ignored.
    let _ = write!(out, "{:>12} {:>14} {:>10} {:>14}\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    let total = h.len();
    if total > 0 {
        let mut row = |value: u64, level: f64, count: u64| {
            let v = value as f64 / unit_ratio;
            let q = level / 100.0;
            if level < 100.0 {
                let _ = writeln!(out, "{v:12.d$} {q:2.12} {count:10} {:14.2}", 1.0 / (1.0 - q));
            } else {
                let _ = writeln!(out, "{v:12.d$} {q:2.12} {count:10}");
            }
        };
        let mut level = 0.0f64;
        let mut running = 0u64;
        let mut last = 0u64;
        'walk: for v in h.iter_recorded() {
            running += v.count_at_value();
            last = h.highest_equivalent(v.value_iterated_to());
            while 100.0 * running as f64 / total as f64 >= level {
                row(last, level, running);
                let halvings = ((100.0 / (100.0 - level)).ln() / 2f64.ln()) as u32;
                let ticks = u64::from(ticks_per_half_distance) << (halvings + 1).min(62);
                level += 100.0 / ticks as f64;
                if running == total {
                    break 'walk;
                }
            }
        }
        row(last, 100.0, total);
    }
    let (mean, sd, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (h.mean() / unit_ratio, h.stdev() / unit_ratio, h.highest_equivalent(h.max()) as f64 / unit_ratio)
    };
    let _ = writeln!(out, "#[Mean    = {mean:12.d$}, StdDeviation   = {sd:12.d$}]");
    let _ = writeln!(out, "#[Max     = {max:12.d$}, Total count    = {:12}]", h.len());
    let _ = writeln!(out, "#[Buckets = {:12}, SubBuckets     = {:12}]", h.buckets(), sub_bucket_count(h.sigfig()));
    out
}

/// Renders in milliseconds from a nanosecond histogram, 5 ticks per half distance.
pub fn render_ms(h: &Histogram<u64>) -> String {
    render(h, 1e6, 5)
}

/// Java's `subBucketCount`: the power of two that holds `2 * 10^sigfig` single-unit values.
fn sub_bucket_count(sigfig: u8) -> u64 {
    let largest = 2 * 10u64.pow(sigfig as u32);
    let magnitude = (largest as f64).log2().ceil() as u32;
    1 << magnitude.max(1)
}
