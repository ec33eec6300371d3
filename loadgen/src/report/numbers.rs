//! Number formats shared by the summary and `compare`'s tables.

use crate::stats::Percentiles;

/// One latency row: p50, p90, p99, p99.9, p99.99, max and mean in ms, 9 wide each.
pub(super) fn row(p: &Percentiles) -> String {
    let ms = |us: f64| format!("{:>9.3}", us / 1000.0);
    format!(
        "{} {} {} {} {} {} {}",
        ms(p.p50_us),
        ms(p.p90_us),
        ms(p.p99_us),
        ms(p.p99_9_us),
        ms(p.p99_99_us),
        ms(p.max_us),
        ms(p.mean_us)
    )
}

/// 1234567 → "1,234,567".
pub fn n(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Bytes with a binary unit.
pub fn bytes(v: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = v as f64;
    let mut i = 0;
    while x >= 1024.0 && i < U.len() - 1 {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v} B")
    } else {
        format!("{x:.1} {}", U[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(n(0), "0");
        assert_eq!(n(999), "999");
        assert_eq!(n(1_000), "1,000");
        assert_eq!(n(1_234_567), "1,234,567");
    }

    #[test]
    fn bytes_take_the_largest_binary_unit_below_them() {
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(1536 << 20), "1.5 GiB");
        assert_eq!(bytes(u64::MAX), "16777216.0 TiB");
    }
}
