//! The batch CSV pipeline behind `auspex detect` and `auspex bench nab`.
//!
//! Input: CSV with the header `timestamp,value` (more columns are allowed and ignored).
//! Output: `timestamp,value,anomaly_score` (plus `expected,lower,upper,anomalous_since,
//! is_anomaly` with `explain`), exactly one row per input row, in order; the timestamp
//! string is copied unchanged.

use std::io::{BufRead, Write};

use auspex_core::text::truncate;
use auspex_core::time::{NumericUnit, format_rfc3339, parse_timestamp};
use auspex_detect::{Config, Detector, Output};

/// Why a CSV series could not be processed. Line numbers are 1-based physical lines.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The input has no lines at all.
    #[error("empty input: no header (expected the header `timestamp,value`)")]
    Empty,
    /// The first line is not a usable header.
    #[error("line 1: missing header: {0} (expected the header `timestamp,value`)")]
    Header(String),
    /// A data row is malformed.
    #[error("line {line}: {why}")]
    Row {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        why: String,
    },
}

/// Options for [`run`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Detector configuration.
    pub config: Config,
    /// Add the explanation columns.
    pub explain: bool,
    /// Unit of numeric timestamps.
    pub unit: NumericUnit,
}

/// Counts from a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Data rows processed.
    pub rows: u64,
    /// Rows flagged `is_anomaly`.
    pub anomalies: u64,
}

fn split_fields(line: &str) -> Vec<&str> {
    line.split(',').map(|f| f.trim().trim_matches('"')).collect()
}

/// Reads the header and returns the indices of `timestamp` and `value`.
fn header(line: &str) -> Result<(usize, usize), CsvError> {
    let line = line.trim_start_matches('\u{feff}');
    let f = split_fields(line);
    let find = |name: &str| f.iter().position(|h| h.eq_ignore_ascii_case(name));
    match (find("timestamp"), find("value")) {
        (Some(t), Some(v)) => Ok((t, v)),
        _ => Err(CsvError::Header(format!("got {:?}", truncate(line, 80)))),
    }
}

/// Parses a value field: a decimal number, or `NaN`/`inf` (treated as missing by the detector);
/// an empty field is missing too.
fn parse_value(s: &str) -> Option<f64> {
    if s.is_empty() {
        return Some(f64::NAN);
    }
    s.parse::<f64>().ok()
}

/// Writes a score with full precision (shortest round-trip form) so ties are never invented.
fn fmt_f64(buf: &mut Vec<u8>, x: f64) {
    use std::io::Write as _;
    if x.is_finite() {
        let _ = write!(buf, "{x}");
    } else {
        buf.extend_from_slice(b"NaN");
    }
}

/// Runs the detector over a CSV stream, calling `progress(bytes_read)` now and then.
/// Stops at the first malformed row (nothing after it is written).
pub fn run<R: BufRead, W: Write>(
    input: R,
    output: W,
    opts: &Options,
    progress: impl FnMut(u64),
) -> Result<Stats, CsvError> {
    run_observed(input, output, opts, progress, |_, _, _| {})
}

/// [`run`], also calling `observe(timestamp_ms, value, output)` for every data row (used to
/// draw a plot alongside).
pub fn run_observed<R: BufRead, W: Write>(
    mut input: R,
    output: W,
    opts: &Options,
    mut progress: impl FnMut(u64),
    mut observe: impl FnMut(i64, f64, &Output),
) -> Result<Stats, CsvError> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, output);
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Err(CsvError::Empty);
    }
    let (ti, vi) = header(line.trim_end_matches(['\r', '\n']))?;
    out.write_all(b"timestamp,value,anomaly_score")?;
    if opts.explain {
        out.write_all(b",expected,lower,upper,anomalous_since,is_anomaly")?;
    }
    out.write_all(b"\n")?;
    let mut det = Detector::new(opts.config);
    let mut stats = Stats::default();
    let mut lineno = 1u64;
    let mut bytes = line.len() as u64;
    let mut buf = Vec::with_capacity(256);
    let need = ti.max(vi) + 1;
    loop {
        line.clear();
        let n = input.read_line(&mut line)?;
        if n == 0 {
            break;
        }
        lineno += 1;
        bytes += n as u64;
        let l = line.trim_end_matches(['\r', '\n']);
        if l.trim().is_empty() {
            continue;
        }
        let mut ts_field = "";
        let mut val_field = "";
        let mut count = 0;
        for (i, f) in l.split(',').enumerate() {
            if i == ti {
                ts_field = f;
            } else if i == vi {
                val_field = f;
            }
            count = i + 1;
        }
        if count < need {
            return Err(CsvError::Row {
                line: lineno,
                why: format!(
                    "malformed row {:?}: expected {need} fields, got {count}",
                    truncate(l, 80)
                ),
            });
        }
        let ts_str = ts_field.trim().trim_matches('"');
        let ts = parse_timestamp(ts_str, opts.unit)
            .map_err(|e| CsvError::Row { line: lineno, why: e.to_string() })?;
        let value =
            parse_value(val_field.trim().trim_matches('"')).ok_or_else(|| CsvError::Row {
                line: lineno,
                why: format!("malformed row: value {:?} is not a number", truncate(val_field, 40)),
            })?;
        let o = det.update(ts, value);
        observe(ts, value, &o);
        stats.rows += 1;
        stats.anomalies += u64::from(o.is_anomaly);
        buf.clear();
        write_row(&mut buf, ts_field, val_field, &o, opts.explain);
        out.write_all(&buf)?;
        if stats.rows % 65_536 == 0 {
            progress(bytes);
        }
    }
    progress(bytes);
    out.flush()?;
    Ok(stats)
}

fn write_row(buf: &mut Vec<u8>, ts: &str, val: &str, o: &Output, explain: bool) {
    buf.extend_from_slice(ts.as_bytes());
    buf.push(b',');
    buf.extend_from_slice(val.as_bytes());
    buf.push(b',');
    fmt_f64(buf, o.score);
    if explain {
        for x in [o.expected, o.lower, o.upper] {
            buf.push(b',');
            fmt_f64(buf, x);
        }
        buf.push(b',');
        if let Some(s) = o.anomalous_since {
            buf.extend_from_slice(format_rfc3339(s).as_bytes());
        }
        buf.extend_from_slice(if o.is_anomaly { b",1" } else { b",0" });
    }
    buf.push(b'\n');
}

/// Runs the detector over rows already parsed, returning one score per row.
pub fn scores(config: Config, rows: &[(i64, f64)]) -> Vec<f64> {
    let mut det = Detector::new(config);
    rows.iter().map(|&(t, v)| det.update(t, v).score).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(input: &str, explain: bool) -> Result<String, CsvError> {
        let mut out = Vec::new();
        let opts = Options { explain, ..Options::default() };
        run(input.as_bytes(), &mut out, &opts, |_| {})?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn one_row_per_input_row_in_order_with_timestamps_copied() {
        let input = "timestamp,value\n2014-01-01 00:05:00,1\n2014-01-01 00:00:00,2\n\
                     2014-01-01 00:00:00,2\r\n1388534400,NaN\n2014-01-01T00:10:00Z,3\n";
        let out = go(input, false).unwrap();
        let rows: Vec<&str> = out.lines().collect();
        assert_eq!(rows[0], "timestamp,value,anomaly_score");
        assert_eq!(rows.len(), 6);
        assert!(rows[1].starts_with("2014-01-01 00:05:00,1,"));
        assert!(rows[2].starts_with("2014-01-01 00:00:00,2,"));
        assert!(rows[3].starts_with("2014-01-01 00:00:00,2,"));
        assert!(rows[4].starts_with("1388534400,NaN,"));
        assert!(rows[5].starts_with("2014-01-01T00:10:00Z,3,"));
        for r in &rows[1..] {
            let s: f64 = r.rsplit(',').next().unwrap().parse().unwrap();
            assert!(s.is_finite() && (0.0..=1.0).contains(&s));
        }
    }

    #[test]
    fn explain_columns() {
        let out = go("timestamp,value\n1,1\n2,2\n", true).unwrap();
        let mut l = out.lines();
        assert_eq!(
            l.next().unwrap(),
            "timestamp,value,anomaly_score,expected,lower,upper,anomalous_since,is_anomaly"
        );
        assert_eq!(l.next().unwrap().split(',').count(), 8);
    }

    #[test]
    fn errors_name_the_line() {
        assert!(matches!(go("", false), Err(CsvError::Empty)));
        assert!(matches!(go("a,b\n1,2\n", false), Err(CsvError::Header(_))));
        let e = go("timestamp,value\n1,1\n2\n", false).unwrap_err().to_string();
        assert!(e.starts_with("line 3: malformed row"), "{e}");
        let e = go("timestamp,value\n1,1\nyesterday,2\n", false).unwrap_err().to_string();
        assert!(e.starts_with("line 3: unparsable timestamp"), "{e}");
        let e = go("timestamp,value\n1,abc\n", false).unwrap_err().to_string();
        assert!(e.starts_with("line 2: malformed row: value"), "{e}");
    }
}
