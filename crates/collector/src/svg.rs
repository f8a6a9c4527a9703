//! Inline SVG charts for the dashboard: no script, no external file, every label escaped.

use std::fmt::Write as _;

use crate::dashboard::escape;

/// A vertical bar chart over time buckets; `points` are `(label, value)` in order.
pub(crate) fn bar_chart(id: &str, title: &str, points: &[(String, u64)]) -> String {
    const W: f64 = 640.0;
    const H: f64 = 180.0;
    const LEFT: f64 = 48.0;
    const BOTTOM: f64 = 24.0;
    const TOP: f64 = 8.0;
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1);
    let plot_w = W - LEFT - 8.0;
    let plot_h = H - BOTTOM - TOP;
    let n = points.len().max(1) as f64;
    let slot = plot_w / n;
    let bar_w = (slot * 0.8).max(1.0);
    let mut svg = String::with_capacity(256 + points.len() * 160);
    let _ = write!(
        svg,
        r#"<figure class="chart" id="{id}"><figcaption>{title}</figcaption><svg role="img" aria-label="{title}" viewBox="0 0 {W} {H}" width="100%" preserveAspectRatio="xMidYMid meet" data-points="{n}" data-max="{max}">"#,
        id = escape(id),
        title = escape(title),
        n = points.len(),
    );
    // Axis and the max label.
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{y0}" stroke="#999"/><line x1="{LEFT}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#999"/><text x="{lx}" y="{ty}" font-size="10" text-anchor="end">{max}</text><text x="{lx}" y="{y0}" font-size="10" text-anchor="end">0</text>"##,
        y0 = TOP + plot_h,
        x1 = W - 8.0,
        lx = LEFT - 4.0,
        ty = TOP + 10.0,
    );
    for (i, (label, value)) in points.iter().enumerate() {
        let h = plot_h * (*value as f64) / (max as f64);
        let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
        let y = TOP + plot_h - h;
        let _ = write!(
            svg,
            r##"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{h:.1}" fill="#3b6fd6" data-value="{value}"><title>{label}: {value}</title></rect>"##,
            label = escape(label),
        );
    }
    // First and last bucket labels under the axis.
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            svg,
            r#"<text x="{LEFT}" y="{H}" font-size="10">{}</text><text x="{}" y="{H}" font-size="10" text-anchor="end">{}</text>"#,
            escape(&first.0),
            W - 8.0,
            escape(&last.0),
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// A horizontal bar chart of labelled counts (largest first as given).
pub(crate) fn hbar_chart(id: &str, title: &str, rows: &[(String, u64)]) -> String {
    const W: f64 = 640.0;
    const ROW: f64 = 20.0;
    const LABEL_W: f64 = 220.0;
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    let h = (rows.len().max(1) as f64) * ROW + 4.0;
    let mut svg = String::with_capacity(256 + rows.len() * 200);
    let _ = write!(
        svg,
        r#"<figure class="chart" id="{id}"><figcaption>{title}</figcaption><svg role="img" aria-label="{title}" viewBox="0 0 {W} {h}" width="100%" data-points="{n}" data-max="{max}">"#,
        id = escape(id),
        title = escape(title),
        n = rows.len(),
    );
    if rows.is_empty() {
        let _ = write!(
            svg,
            r##"<text x="4" y="14" font-size="12" fill="#777">no data in this range</text>"##
        );
    }
    for (i, (label, value)) in rows.iter().enumerate() {
        let y = i as f64 * ROW + 2.0;
        let w = (W - LABEL_W - 60.0) * (*value as f64) / (max as f64);
        let _ = write!(
            svg,
            r##"<text x="{lx}" y="{ty:.1}" font-size="11" text-anchor="end">{label}</text><rect class="bar" x="{LABEL_W}" y="{y:.1}" width="{w:.1}" height="{bh}" fill="#2f9e72" data-value="{value}"><title>{label}: {value}</title></rect><text x="{vx:.1}" y="{ty:.1}" font-size="11">{value}</text>"##,
            lx = LABEL_W - 6.0,
            ty = y + 13.0,
            bh = ROW - 4.0,
            vx = LABEL_W + w + 4.0,
            label = escape(label),
        );
    }
    svg.push_str("</svg></figure>");
    svg
}
