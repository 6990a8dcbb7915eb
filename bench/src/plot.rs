//! A grouped bar chart of ops/s, one group per (workload, distribution), one bar per
//! engine, written as plain SVG. The y axis is logarithmic: durable puts run at
//! hundreds of ops/s and reads at hundreds of thousands.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use crate::report::EngineRun;

/// One color per engine of [`crate::engines::ALL`], so charts of different runs match.
const COLORS: [&str; 4] = ["#d62728", "#ff7f0e", "#1f77b4", "#2ca02c"];

fn color(engine: &str) -> &'static str {
    let i = crate::engines::ALL
        .iter()
        .position(|e| *e == engine)
        .unwrap_or(0);
    COLORS[i % COLORS.len()]
}
const BAR_W: f64 = 12.0;
const GROUP_GAP: f64 = 14.0;
const LEFT: f64 = 70.0;
const TOP: f64 = 40.0;
const PLOT_H: f64 = 320.0;
const BOTTOM: f64 = 90.0;

fn phase_of(row: &Value) -> (String, String) {
    let s = |f: &str| {
        row.get(f)
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string()
    };
    (s("workload"), s("distribution"))
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn write_svg(runs: &[EngineRun], path: &Path) -> Result<()> {
    let phases: Vec<(String, String)> = runs
        .first()
        .map(|r| r.rows.iter().map(phase_of).collect())
        .unwrap_or_default();
    let value = |run: &EngineRun, phase: &(String, String)| {
        run.rows
            .iter()
            .find(|r| &phase_of(r) == phase)
            .and_then(|r| r.get("ops_per_sec"))
            .and_then(Value::as_f64)
    };
    let max = runs
        .iter()
        .flat_map(|run| phases.iter().filter_map(move |p| value(run, p)))
        .fold(1.0f64, f64::max);
    // Decades from 10 ops/s up to the first power of ten above the maximum.
    let (lo, hi) = (1.0f64, max.log10().ceil().max(2.0));
    let y =
        |v: f64| TOP + PLOT_H * (1.0 - ((v.max(10.0).log10() - lo) / (hi - lo)).clamp(0.0, 1.0));

    let group_w = BAR_W * runs.len() as f64 + GROUP_GAP;
    let width = LEFT + group_w * phases.len() as f64 + 20.0;
    let height = TOP + PLOT_H + BOTTOM;
    let mut svg = String::new();
    writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="11">"#
    )?;
    writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#)?;
    writeln!(
        svg,
        r#"<text x="{LEFT}" y="18" font-size="14">ringkv engine benchmark: ops/s (log scale)</text>"#
    )?;
    for decade in (lo as i32)..=(hi as i32) {
        let v = 10f64.powi(decade);
        let yy = y(v);
        writeln!(
            svg,
            r##"<line x1="{LEFT}" x2="{:.0}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.0}" y="{:.1}" text-anchor="end">{}</text>"##,
            width - 20.0,
            LEFT - 6.0,
            yy + 4.0,
            format_ops(v)
        )?;
    }
    for (g, phase) in phases.iter().enumerate() {
        let x0 = LEFT + g as f64 * group_w + GROUP_GAP / 2.0;
        for (e, run) in runs.iter().enumerate() {
            if let Some(v) = value(run, phase) {
                let x = x0 + e as f64 * BAR_W;
                let top = y(v);
                writeln!(
                    svg,
                    r#"<rect x="{x:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {} {}: {v:.0} ops/s</title></rect>"#,
                    BAR_W - 1.0,
                    TOP + PLOT_H - top,
                    color(&run.engine),
                    escape(&run.engine),
                    escape(&phase.0),
                    escape(&phase.1)
                )?;
            }
        }
        let cx = x0 + BAR_W * runs.len() as f64 / 2.0;
        let dist = match phase.1.as_str() {
            "zipfian" => "zipf",
            "uniform" => "unif",
            other => other,
        };
        writeln!(
            svg,
            r#"<text transform="translate({cx:.1},{:.1}) rotate(-45)" text-anchor="end">{} {}</text>"#,
            TOP + PLOT_H + 12.0,
            escape(&phase.0),
            escape(dist)
        )?;
    }
    for (e, run) in runs.iter().enumerate() {
        let x = LEFT + 150.0 * e as f64;
        let ly = height - 14.0;
        writeln!(
            svg,
            r#"<rect x="{x:.0}" y="{:.0}" width="10" height="10" fill="{}"/><text x="{:.0}" y="{ly:.0}">{}</text>"#,
            ly - 9.0,
            color(&run.engine),
            x + 14.0,
            escape(&run.engine)
        )?;
    }
    writeln!(svg, "</svg>")?;
    std::fs::write(path, svg)?;
    Ok(())
}

fn format_ops(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.0}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}
