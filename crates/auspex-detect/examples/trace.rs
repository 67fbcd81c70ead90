//! Prints the detector's view of a `timestamp,value` CSV (Unix seconds or
//! `YYYY-MM-DD HH:MM:SS`): one line per row with score, expected, deviation and internals.
//! A development aid: `cargo run -p auspex-detect --example trace -- FILE`.

fn parse(ts: &str) -> i64 {
    // Minimal: YYYY-MM-DD HH:MM:SS as UTC, else Unix seconds.
    let b = ts.as_bytes();
    if b.len() >= 19 && b[4] == b'-' {
        let n = |a: usize, l: usize| ts[a..a + l].parse::<i64>().unwrap_or(0);
        let (y, m, d) = (n(0, 4), n(5, 2), n(8, 2));
        let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
        let era = y2.div_euclid(400);
        let yoe = y2 - era * 400;
        let doy = (153 * m2 + 2) / 5 + d - 1;
        let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
        (days * 86_400 + n(11, 2) * 3600 + n(14, 2) * 60 + n(17, 2)) * 1000
    } else {
        ts.parse::<f64>().map(|s| (s * 1000.0) as i64).unwrap_or(0)
    }
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: trace FILE");
    let text = std::fs::read_to_string(path).expect("read");
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut d = auspex_detect::Detector::default();
    for (i, line) in text.lines().enumerate().skip(1) {
        let mut f = line.split(',');
        let (t, v) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
        let o = d.update(parse(t), v.parse().unwrap_or(f64::NAN));
        let line = format!(
            "{i} {t} v={v} s={:.4} exp={:.3} dev={:.2} {}",
            o.score,
            o.expected,
            o.deviation,
            d.debug_internals()
        );
        if writeln!(out, "{line}").is_err() {
            return; // the reader went away
        }
    }
}
