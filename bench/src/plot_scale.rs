//! The `scale` run as plain SVG: aggregate ops/s against the number of nodes (one line
//! per test and shard count, with the linear ideal from the smallest cluster dashed),
//! and p50/p99 latency per row on a log axis.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::plot::escape;
use crate::server::load::Row;

const W: f64 = 900.0;
const H: f64 = 420.0;
const TOP: f64 = 50.0;
const PLOT_H: f64 = 280.0;
/// Left panel: throughput.
const L_X: f64 = 70.0;
const L_W: f64 = 330.0;
/// Right panel: latency.
const R_X: f64 = 500.0;
const R_W: f64 = 370.0;
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"];

/// `rows`: (shards per process, row) as `scale` measured them; `title` names the run.
pub fn write_svg(rows: &[(u32, Row)], title: &str, path: &Path) -> Result<()> {
    let mut svg = String::new();
    writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">"#
    )?;
    writeln!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#)?;
    writeln!(
        svg,
        r#"<text x="{L_X}" y="20" font-size="14">{}</text>"#,
        escape(title)
    )?;
    throughput(&mut svg, rows)?;
    latency(&mut svg, rows)?;
    writeln!(svg, "</svg>")?;
    std::fs::write(path, svg)?;
    Ok(())
}

/// Series: (test, shards) in first-seen order.
fn series(rows: &[(u32, Row)]) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = Vec::new();
    for (shards, row) in rows {
        let key = (row.test.clone(), *shards);
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

fn throughput(svg: &mut String, rows: &[(u32, Row)]) -> Result<()> {
    let distinct = |values: Vec<usize>| {
        let mut values = values;
        values.sort_unstable();
        values.dedup();
        values
    };
    // The x axis: the number of nodes, or, for one cluster size over several shard
    // counts, the shards per process (one line per test then).
    let by_shards = distinct(rows.iter().map(|(_, r)| r.nodes).collect()).len() == 1
        && distinct(rows.iter().map(|(s, _)| *s as usize).collect()).len() > 1;
    let x_value = |shards: u32, row: &Row| {
        if by_shards {
            shards as usize
        } else {
            row.nodes
        }
    };
    let nodes = distinct(rows.iter().map(|(s, r)| x_value(*s, r)).collect());
    let series: Vec<(String, u32)> = if by_shards {
        let mut tests: Vec<(String, u32)> = Vec::new();
        for (_, row) in rows {
            if !tests.iter().any(|(t, _)| t == &row.test) {
                tests.push((row.test.clone(), 1));
            }
        }
        tests
    } else {
        series(rows)
    };
    let points = |(test, shards): &(String, u32)| -> Vec<(usize, f64)> {
        rows.iter()
            .filter(|(s, r)| (by_shards || s == shards) && &r.test == test)
            .map(|(s, r)| (x_value(*s, r), r.ops_per_s))
            .collect()
    };
    // The linear ideal of each series from its smallest cluster.
    let ideal = |s: &(String, u32)| -> Vec<(usize, f64)> {
        let pts = points(s);
        match pts.iter().min_by_key(|(n, _)| *n) {
            Some(&(n0, ops0)) if n0 > 0 => nodes
                .iter()
                .map(|&n| (n, ops0 * n as f64 / n0 as f64))
                .collect(),
            _ => Vec::new(),
        }
    };
    let max = series
        .iter()
        .flat_map(|s| points(s).into_iter().chain(ideal(s)))
        .map(|(_, v)| v)
        .fold(1.0_f64, f64::max)
        * 1.1;
    let x_of = |n: usize| -> f64 {
        match nodes.iter().position(|&m| m == n) {
            Some(i) if nodes.len() > 1 => {
                L_X + 20.0 + i as f64 * (L_W - 40.0) / (nodes.len() - 1) as f64
            }
            _ => L_X + L_W / 2.0,
        }
    };
    let y_of = |v: f64| TOP + PLOT_H - v / max * PLOT_H;
    axes(svg, L_X, L_W, "aggregate ops/s")?;
    for tick in 0..=4 {
        let v = max * f64::from(tick) / 4.0;
        writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{:.0}k</text>"#,
            L_X - 4.0,
            y_of(v) + 4.0,
            v / 1000.0
        )?;
    }
    let unit = if by_shards {
        "shard(s) per node"
    } else {
        "nodes"
    };
    for &n in &nodes {
        writeln!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{n} {unit}</text>"#,
            x_of(n),
            TOP + PLOT_H + 16.0
        )?;
    }
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let line = |pts: &[(usize, f64)]| -> String {
            pts.iter()
                .map(|&(n, v)| format!("{:.1},{:.1}", x_of(n), y_of(v)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let pts = points(s);
        if nodes.len() > 1 {
            writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-dasharray="4 3" stroke-opacity="0.5"/>"#,
                line(&ideal(s))
            )?;
        }
        writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            line(&pts)
        )?;
        for &(n, v) in &pts {
            writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                x_of(n),
                y_of(v)
            )?;
        }
        let label = if s.1 > 1 {
            format!("{} ({} shards)", s.0, s.1)
        } else {
            s.0.clone()
        };
        writeln!(
            svg,
            r#"<text x="{}" y="{}" fill="{color}">{}</text>"#,
            L_X + 8.0,
            TOP + 12.0 + 14.0 * i as f64,
            escape(&label)
        )?;
    }
    writeln!(
        svg,
        r##"<text x="{}" y="{}" fill="#666">dashed: linear from the smallest</text>"##,
        L_X,
        TOP + PLOT_H + 34.0
    )?;
    Ok(())
}

fn latency(svg: &mut String, rows: &[(u32, Row)]) -> Result<()> {
    axes(svg, R_X, R_W, "latency, ms (log): p50 solid, p99 light")?;
    let values: Vec<f64> = rows
        .iter()
        .flat_map(|(_, r)| [r.p50_ms, r.p99_ms])
        .filter(|v| *v > 0.0)
        .collect();
    let lo = values.iter().copied().fold(f64::MAX, f64::min).max(0.01);
    let hi = values
        .iter()
        .copied()
        .fold(0.0_f64, f64::max)
        .max(lo * 10.0);
    let (lo_exp, hi_exp) = (lo.log10().floor(), hi.log10().ceil());
    let y_of = |v: f64| {
        let t = (v.max(10f64.powf(lo_exp)).log10() - lo_exp) / (hi_exp - lo_exp).max(1.0);
        TOP + PLOT_H - t * PLOT_H
    };
    let mut exp = lo_exp;
    while exp <= hi_exp {
        let v = 10f64.powf(exp);
        writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            R_X - 4.0,
            y_of(v) + 4.0,
            v
        )?;
        exp += 1.0;
    }
    let series = series(rows);
    let slot = R_W / rows.len().max(1) as f64;
    for (i, (shards, r)) in rows.iter().enumerate() {
        let color_index = series
            .iter()
            .position(|s| s.0 == r.test && s.1 == *shards)
            .unwrap_or(0);
        let color = COLORS[color_index % COLORS.len()];
        let x = R_X + i as f64 * slot + slot * 0.15;
        let w = slot * 0.35;
        for (j, (v, opacity)) in [(r.p50_ms, 1.0), (r.p99_ms, 0.4)].into_iter().enumerate() {
            let y = y_of(v);
            writeln!(
                svg,
                r#"<rect x="{:.1}" y="{y:.1}" width="{w:.1}" height="{:.1}" fill="{color}" fill-opacity="{opacity}"/>"#,
                x + j as f64 * w,
                (TOP + PLOT_H - y).max(0.0)
            )?;
        }
        let label = if *shards > 1 {
            format!("{}n×{} {}", r.nodes, shards, r.test)
        } else {
            format!("{}n {}", r.nodes, r.test)
        };
        writeln!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="end" transform="rotate(-40 {:.1} {})">{}</text>"#,
            x + w,
            TOP + PLOT_H + 14.0,
            x + w,
            TOP + PLOT_H + 14.0,
            escape(&label)
        )?;
    }
    Ok(())
}

fn axes(svg: &mut String, x: f64, w: f64, label: &str) -> Result<()> {
    writeln!(
        svg,
        r##"<line x1="{x}" y1="{TOP}" x2="{x}" y2="{}" stroke="#333"/><line x1="{x}" y1="{}" x2="{}" y2="{}" stroke="#333"/>"##,
        TOP + PLOT_H,
        TOP + PLOT_H,
        x + w,
        TOP + PLOT_H
    )?;
    writeln!(
        svg,
        r#"<text x="{x}" y="{}" font-size="12">{}</text>"#,
        TOP - 8.0,
        escape(label)
    )?;
    Ok(())
}
