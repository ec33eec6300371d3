//! `loadgen run --record DIR`: a dated results folder for one run, with everything needed to
//! reproduce and judge it (command, git revision, machine, the summary, raw JSON, `.hgrm`, plot).

use anyhow::Context;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::hgrm;
use crate::machine::{self, Machine};
use crate::plot;
use crate::report::Report;

/// Writes `dir/<date>-<bots>bots-<mode>/` and returns its path.
pub fn write_run(dir: &Path, report: &Report, command: &str) -> anyhow::Result<PathBuf> {
    let date = machine::today();
    let name = format!("{date}-{}bots-{}", report.bots.requested, report.mode.replace('+', "-"));
    let mut out = dir.join(&name);
    let mut i = 2;
    while out.exists() {
        out = dir.join(format!("{name}-{i}"));
        i += 1;
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let m = Machine::describe();
    let git = machine::git_revision();
    std::fs::write(out.join("report.json"), serde_json::to_string_pretty(report)?)?;
    std::fs::write(out.join("latency.hgrm"), hgrm::render_ms(&report.hists.corrected))?;
    std::fs::write(out.join("latency-uncorrected.hgrm"), hgrm::render_ms(&report.hists.uncorrected))?;
    let title = format!(
        "{} bots, {:.0} msg/s, {}: delivery latency",
        report.bots.requested,
        report.scenario.total_rate(),
        report.mode
    );
    plot::latency_spectrum(
        &out.join("latency.png"),
        &title,
        &[
            ("corrected (from intended send)".into(), &report.hists.corrected),
            ("uncorrected".into(), &report.hists.uncorrected),
        ],
    )?;
    let mut r = String::new();
    let _ = writeln!(r, "# {} bots, {} — {date}\n", report.bots.requested, report.mode);
    let _ = writeln!(r, "- **Machine:** {}", m.label());
    let _ = writeln!(r, "- **Git revision:** `{git}`");
    let _ = writeln!(r, "- **Command:** `{command}`");
    let _ = writeln!(
        r,
        "- **Result:** {}\n",
        if report.ok() { "every expected message delivered exactly once" } else { "ERRORS (see the summary)" }
    );
    let _ = writeln!(
        r,
        "Load generator and server share this machine's cores over loopback; latency and CPU figures are noisy on a \
         small shared machine. Byte counts are exact.\n"
    );
    let _ = writeln!(r, "## Summary (as printed)\n\n```text\n{}```\n", report.summary());
    let _ = writeln!(r, "![latency spectrum](latency.png)\n");
    let _ = writeln!(
        r,
        "Files: `report.json` (everything above and more), `latency.hgrm` / `latency-uncorrected.hgrm` (HdrHistogram \
         percentile distributions, ms)."
    );
    std::fs::write(out.join("README.md"), r)?;
    Ok(out)
}
