//! A bounded-memory SVG plot of a detected series: the value, the normal band, and the
//! anomalous points. Points are folded into at most `2 * width` time buckets as they stream
//! in (neighbouring buckets merge when full), so any length of input plots in O(width) memory.

use std::fmt::Write as _;

use auspex_core::time::format_rfc3339;
use auspex_detect::Output;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    t0: i64,
    t1: i64,
    vmin: f64,
    vmax: f64,
    lo: f64,
    hi: f64,
    anomalies: u32,
    amax: f64,
    n: u32,
}

impl Bucket {
    fn merge(&mut self, o: &Bucket) {
        self.t0 = self.t0.min(o.t0);
        self.t1 = self.t1.max(o.t1);
        self.vmin = self.vmin.min(o.vmin);
        self.vmax = self.vmax.max(o.vmax);
        self.lo = self.lo.min(o.lo);
        self.hi = self.hi.max(o.hi);
        if o.anomalies > 0 && (self.anomalies == 0 || o.amax.abs() > self.amax.abs()) {
            self.amax = o.amax;
        }
        self.anomalies += o.anomalies;
        self.n += o.n;
    }
}

/// Collects points and renders an SVG.
#[derive(Debug)]
pub struct Plot {
    width: usize,
    per_bucket: u32,
    buckets: Vec<Bucket>,
    anomalies: u64,
    points: u64,
}

impl Plot {
    /// A plot `width` pixels wide (at least 100).
    pub fn new(width: usize) -> Self {
        Self { width: width.max(100), per_bucket: 1, buckets: Vec::new(), anomalies: 0, points: 0 }
    }

    /// Adds one detected point. Non-finite values are skipped.
    pub fn add(&mut self, ts: i64, value: f64, o: &Output) {
        if !value.is_finite() {
            return;
        }
        self.points += 1;
        self.anomalies += u64::from(o.is_anomaly);
        let (lo, hi) = if o.lower.is_finite() && o.upper.is_finite() {
            (o.lower, o.upper)
        } else {
            (value, value)
        };
        let b = Bucket {
            t0: ts,
            t1: ts,
            vmin: value,
            vmax: value,
            lo,
            hi,
            anomalies: u32::from(o.is_anomaly),
            amax: value,
            n: 1,
        };
        match self.buckets.last_mut() {
            Some(last) if last.n < self.per_bucket => last.merge(&b),
            _ => self.buckets.push(b),
        }
        if self.buckets.len() >= 2 * self.width {
            let merged: Vec<Bucket> = self
                .buckets
                .chunks(2)
                .map(|c| {
                    let mut m = c[0];
                    if let Some(o) = c.get(1) {
                        m.merge(o);
                    }
                    m
                })
                .collect();
            self.buckets = merged;
            self.per_bucket = self.per_bucket.saturating_mul(2);
        }
    }

    /// Renders the SVG (`title` is escaped).
    pub fn svg(&self, title: &str) -> String {
        let (w, h, pad) = (self.width as f64, 360.0, 48.0);
        let mut s = String::new();
        let _ = write!(
            s,
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="#fff"/>"##,
            w + 2.0 * pad,
            h + 2.0 * pad
        );
        let _ = write!(
            s,
            r#"<text x="{pad}" y="20">{}</text>"#,
            auspex_core::text::escape_markup(title)
        );
        if self.buckets.is_empty() {
            s.push_str("</svg>\n");
            return s;
        }
        let t0 = self.buckets[0].t0;
        let t1 = self.buckets.last().map_or(t0, |b| b.t1).max(t0 + 1);
        let mut ymin = f64::INFINITY;
        let mut ymax = f64::NEG_INFINITY;
        for b in &self.buckets {
            ymin = ymin.min(b.vmin).min(b.lo);
            ymax = ymax.max(b.vmax).max(b.hi);
        }
        if ymax <= ymin {
            ymax = ymin + 1.0;
        }
        let x = |t: i64| pad + (t - t0) as f64 / (t1 - t0) as f64 * w;
        let y = |v: f64| pad + h - (v - ymin) / (ymax - ymin) * h;
        // Band.
        s.push_str(r##"<path fill="#cfe3f7" stroke="none" d=""##);
        for (i, b) in self.buckets.iter().enumerate() {
            let _ = write!(s, "{}{:.1},{:.1} ", if i == 0 { "M" } else { "L" }, x(b.t0), y(b.hi));
        }
        for b in self.buckets.iter().rev() {
            let _ = write!(s, "L{:.1},{:.1} ", x(b.t0), y(b.lo));
        }
        s.push_str(r#"Z"/>"#);
        // Value: a min-max envelope per bucket.
        s.push_str(r##"<path fill="none" stroke="#1f4e79" stroke-width="1" d=""##);
        for (i, b) in self.buckets.iter().enumerate() {
            let _ = write!(
                s,
                "{}{:.1},{:.1} L{:.1},{:.1} ",
                if i == 0 { "M" } else { "L" },
                x(b.t0),
                y(b.vmin),
                x(b.t0),
                y(b.vmax)
            );
        }
        s.push_str(r#""/>"#);
        // Anomalies.
        for b in self.buckets.iter().filter(|b| b.anomalies > 0) {
            let _ = write!(
                s,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="#d62728"><title>{} anomalous point(s) from {}</title></circle>"##,
                x(b.t0),
                y(b.amax),
                b.anomalies,
                format_rfc3339(b.t0)
            );
        }
        // Axes and labels.
        let _ = write!(
            s,
            r##"<line x1="{pad}" y1="{0}" x2="{1}" y2="{0}" stroke="#888"/><text x="{pad}" y="{2}">{3}</text><text x="{1}" y="{2}" text-anchor="end">{4}</text><text x="4" y="{5}">{6:.4}</text><text x="4" y="{7}">{8:.4}</text>"##,
            pad + h,
            pad + w,
            pad + h + 18.0,
            format_rfc3339(t0),
            format_rfc3339(t1),
            pad + h,
            ymin,
            pad + 10.0,
            ymax
        );
        let _ = write!(
            s,
            r##"<text x="{}" y="20" text-anchor="end">{} points, {} anomalous (red); band in blue</text></svg>"##,
            pad + w,
            self.points,
            self.anomalies
        );
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(v: f64, anomaly: bool) -> Output {
        Output {
            score: 0.0,
            expected: v,
            lower: v - 1.0,
            upper: v + 1.0,
            deviation: 0.0,
            is_anomaly: anomaly,
            anomalous_since: None,
        }
    }

    #[test]
    fn memory_is_bounded_and_anomalies_survive_merging() {
        let mut p = Plot::new(100);
        for i in 0..1_000_000i64 {
            p.add(i * 1000, (i % 50) as f64, &out((i % 50) as f64, i == 777_777));
        }
        assert!(p.buckets.len() < 200);
        assert_eq!(p.points, 1_000_000);
        let svg = p.svg("a <test>");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains("a &lt;test&gt;"));
    }

    #[test]
    fn empty_and_constant_series_render() {
        assert!(Plot::new(300).svg("x").contains("</svg>"));
        let mut p = Plot::new(300);
        for i in 0..10 {
            p.add(i, 5.0, &out(5.0, false));
        }
        assert!(!p.svg("x").contains("NaN"));
    }
}
