//! PNG plots with plotters: the latency percentile spectrum (HdrHistogram style: the x axis is
//! `1/(1-percentile)` on a log scale, so 90%, 99%, 99.9% ... are evenly spaced).
//!
//! Text is drawn with a vendored DejaVu Sans (`src/font/`, Bitstream Vera licence) through
//! plotters' `ab_glyph` backend: no system fonts or fontconfig needed, so a clean machine renders
//! the same picture.

use anyhow::{anyhow, Context};
use hdrhistogram::Histogram;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: &[u8] = include_bytes!("font/DejaVuSans.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The vendored font is a valid TTF; if registration failed, text would be missing, not
        // the plot.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

const COLORS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

/// `x = 1/(1-p)` to a percentile label: 10 → "90%", 1000 → "99.9%".
pub fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x.max(1.0));
    let s = format!("{p:.5}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

/// Points of the spectrum of `h` (ns) in ms, below the 100th percentile.
pub fn spectrum_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    h.iter_quantiles(5)
        .filter(|v| v.quantile_iterated_to() < 1.0)
        .map(|v| (1.0 / (1.0 - v.quantile_iterated_to()), v.value_iterated_to() as f64 / 1e6))
        .collect()
}

/// Draws one line per `(label, histogram)` into a PNG at `path`.
pub fn latency_spectrum(path: &Path, title: &str, series: &[(String, &Histogram<u64>)]) -> anyhow::Result<()> {
    register_font();
    let lines: Vec<(String, Vec<(f64, f64)>)> = series.iter().map(|(l, h)| (l.clone(), spectrum_points(h))).collect();
    let max_count = series.iter().map(|(_, h)| h.len()).max().unwrap_or(1).max(10);
    // The spectrum cannot resolve beyond 1/count; stop the axis there (at most 99.9999%).
    let max_x = 10f64.powf((max_count as f64).log10().ceil()).clamp(10.0, 1e6);
    let max_y = lines.iter().flat_map(|(_, p)| p.iter().map(|(_, y)| *y)).fold(0.0, f64::max).max(0.001) * 1.08;

    let root = BitMapBackend::new(path, (1100, 650)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow!("plotting {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(18)
        .margin_right(48)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d((1f64..max_x).log_scale(), 0f64..max_y)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| format!("{y:.3}"))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, (label, pts)) in lines.into_iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e)).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn labels() {
        assert_eq!(super::percentile_label(1.0), "0%");
        assert_eq!(super::percentile_label(10.0), "90%");
        assert_eq!(super::percentile_label(1000.0), "99.9%");
        assert_eq!(super::percentile_label(100000.0), "99.999%");
    }
}
