//! Time: `i64` milliseconds since the Unix epoch, UTC. Parsing and RFC 3339 formatting.

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type TimestampMs = i64;

/// How bare numbers are read by [`parse_timestamp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NumericUnit {
    /// Unix seconds (integer or fractional).
    #[default]
    Seconds,
    /// Unix milliseconds (integer or fractional).
    Millis,
}

/// Why a timestamp could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unparsable timestamp {input:?}: {why} (use YYYY-MM-DD HH:MM:SS[.f], RFC 3339, or Unix seconds)"
)]
pub struct TimeError {
    /// The text that was given (truncated to 64 bytes).
    pub input: String,
    /// What was wrong with it.
    pub why: &'static str,
}

/// The earliest time RFC 3339 can write: 0000-01-01T00:00:00Z.
pub const EARLIEST_MS: TimestampMs = -62_167_219_200_000;
/// The latest time RFC 3339 can write: 9999-12-31T23:59:59.999Z.
pub const LATEST_MS: TimestampMs = 253_402_300_799_999;

/// Whether `t` is within years 0000–9999, so [`format_rfc3339`] writes what
/// [`parse_timestamp`] reads back (every time that is stored as text must be).
pub fn representable(t: TimestampMs) -> bool {
    (EARLIEST_MS..=LATEST_MS).contains(&t)
}

fn err(input: &str, why: &'static str) -> TimeError {
    TimeError { input: crate::text::truncate(input, 64).to_string(), why }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day number since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Parses a timestamp into UTC milliseconds. Accepted forms:
///
/// - `YYYY-MM-DD HH:MM:SS[.f]`, read as UTC;
/// - RFC 3339: `YYYY-MM-DDTHH:MM:SS[.f](Z|±HH:MM)` (a space may replace `T`; the zone may be
///   left out, meaning UTC);
/// - integer or fractional Unix time, in `unit`.
///
/// Fractions finer than a millisecond are truncated toward the past. A number outside years
/// 0000–9999 is refused (see [`representable`]).
pub fn parse_timestamp(s: &str, unit: NumericUnit) -> Result<TimestampMs, TimeError> {
    let t = s.trim();
    let b = t.as_bytes();
    let ms = if b.len() >= 10 && b[4] == b'-' && b[7] == b'-' {
        parse_datetime(t).map_err(|why| err(s, why))?
    } else {
        parse_numeric(t, unit).ok_or_else(|| err(s, "not a date-time and not a number"))?
    };
    if !representable(ms) {
        return Err(err(s, "out of range (years 0000 to 9999)"));
    }
    Ok(ms)
}

fn parse_numeric(t: &str, unit: NumericUnit) -> Option<TimestampMs> {
    if t.is_empty() {
        return None;
    }
    let scale = match unit {
        NumericUnit::Seconds => 1000.0,
        NumericUnit::Millis => 1.0,
    };
    if let Ok(i) = t.parse::<i64>() {
        return match unit {
            NumericUnit::Seconds => i.checked_mul(1000),
            NumericUnit::Millis => Some(i),
        };
    }
    // Only plain decimal notation: no "inf", "nan" or hex floats.
    if !t.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'+' | b'e' | b'E')) {
        return None;
    }
    let f: f64 = t.parse().ok()?;
    let ms = (f * scale).floor();
    if !ms.is_finite() || ms.abs() > 9.0e15 {
        return None;
    }
    Some(ms as i64)
}

fn parse_datetime(t: &str) -> Result<TimestampMs, &'static str> {
    let b = t.as_bytes();
    let y = digits(b, 0, 4).ok_or("bad year")?;
    let mo = digits(b, 5, 2).ok_or("bad month")?;
    let d = digits(b, 8, 2).ok_or("bad day")?;
    if !(1..=12).contains(&mo) {
        return Err("month out of range");
    }
    if d < 1 || d > days_in_month(i64::from(y), mo) {
        return Err("day out of range");
    }
    let days = days_from_civil(i64::from(y), mo, d);
    if b.len() == 10 {
        return Ok(days * 86_400_000);
    }
    if !matches!(b[10], b' ' | b'T' | b't') {
        return Err("expected ' ' or 'T' after the date");
    }
    let h = digits(b, 11, 2).ok_or("bad hour")?;
    if b.get(13) != Some(&b':') {
        return Err("expected ':' after the hour");
    }
    let mi = digits(b, 14, 2).ok_or("bad minute")?;
    let (sec, mut i) = if b.get(16) == Some(&b':') {
        (digits(b, 17, 2).ok_or("bad second")?, 19)
    } else {
        (0, 16)
    };
    if h > 23 || mi > 59 || sec > 60 {
        return Err("time of day out of range");
    }
    let mut ms = 0i64;
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        i += 1;
        let start = i;
        let mut scale = 100;
        while i < b.len() && b[i].is_ascii_digit() {
            ms += i64::from(b[i] - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return Err("empty fraction");
        }
    }
    let mut offset_min = 0i64;
    match b.get(i) {
        None => {}
        Some(b'Z' | b'z') if i + 1 == b.len() => {}
        Some(&c @ (b'+' | b'-')) => {
            let oh = digits(b, i + 1, 2).ok_or("bad zone offset")?;
            let om = match b.get(i + 3) {
                Some(b':') => digits(b, i + 4, 2).ok_or("bad zone offset")?,
                None => 0,
                _ => digits(b, i + 3, 2).ok_or("bad zone offset")?,
            };
            let consumed = match b.get(i + 3) {
                Some(b':') => 6,
                None => 3,
                _ => 5,
            };
            if i + consumed != b.len() || oh > 23 || om > 59 {
                return Err("bad zone offset");
            }
            let sign = if c == b'-' { -1 } else { 1 };
            offset_min = sign * (i64::from(oh) * 60 + i64::from(om));
        }
        _ => return Err("trailing characters after the time"),
    }
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(sec);
    Ok((secs - offset_min * 60) * 1000 + ms)
}

/// Formats as RFC 3339 in UTC with millisecond precision: `2024-01-02T03:04:05.678Z`.
pub fn format_rfc3339(ms: TimestampMs) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, f) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{f:03}Z")
}

/// Serde helpers that write a [`TimestampMs`] as an RFC 3339 string and read it back.
pub mod rfc3339 {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises as RFC 3339.
    pub fn serialize<S: Serializer>(ms: &TimestampMs, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_rfc3339(*ms))
    }

    /// Reads RFC 3339 (or any form [`parse_timestamp`] takes).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TimestampMs, D::Error> {
        let s = String::deserialize(d)?;
        parse_timestamp(&s, NumericUnit::Seconds).map_err(serde::de::Error::custom)
    }

    /// The same for `Option<TimestampMs>` (`null` when absent).
    pub mod option {
        use super::*;

        /// Serialises as RFC 3339 or `null`.
        pub fn serialize<S: Serializer>(ms: &Option<TimestampMs>, s: S) -> Result<S::Ok, S::Error> {
            match ms {
                Some(ms) => s.serialize_str(&format_rfc3339(*ms)),
                None => s.serialize_none(),
            }
        }

        /// Reads RFC 3339 or `null`.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<TimestampMs>, D::Error> {
            let s = Option::<String>::deserialize(d)?;
            s.map(|s| parse_timestamp(&s, NumericUnit::Seconds).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: NumericUnit = NumericUnit::Seconds;

    #[test]
    fn forms() {
        let base = 1_388_534_400_000; // 2014-01-01T00:00:00Z
        assert_eq!(parse_timestamp("2014-01-01 00:00:00", S).unwrap(), base);
        assert_eq!(parse_timestamp("2014-01-01T00:00:00Z", S).unwrap(), base);
        assert_eq!(parse_timestamp("2014-01-01T01:30:00+01:30", S).unwrap(), base);
        assert_eq!(parse_timestamp("2013-12-31T23:00:00-01:00", S).unwrap(), base);
        assert_eq!(parse_timestamp("2014-01-01 00:00:00.250", S).unwrap(), base + 250);
        assert_eq!(parse_timestamp("2014-01-01 00:00:00.000000", S).unwrap(), base);
        assert_eq!(parse_timestamp("1388534400", S).unwrap(), base);
        assert_eq!(parse_timestamp("1388534400.5", S).unwrap(), base + 500);
        assert_eq!(parse_timestamp("1388534400000", NumericUnit::Millis).unwrap(), base);
        assert_eq!(parse_timestamp(" 2014-01-01 ", S).unwrap(), base);
    }

    #[test]
    fn only_times_rfc_3339_can_write_are_read() {
        let m = NumericUnit::Millis;
        for t in [EARLIEST_MS, LATEST_MS, 0, -1] {
            assert_eq!(parse_timestamp(&format_rfc3339(t), m), Ok(t), "{t}");
            assert_eq!(parse_timestamp(&t.to_string(), m), Ok(t), "{t}");
        }
        for t in [EARLIEST_MS - 1, LATEST_MS + 1, i64::MIN, i64::MAX] {
            let e = parse_timestamp(&t.to_string(), m).unwrap_err();
            assert!(e.why.contains("out of range"), "{t}: {e}");
        }
        assert!(parse_timestamp("0000-01-01T00:00:00+01:00", m).is_err(), "before year 0000");
        assert!(parse_timestamp("9999-12-31T23:59:59-01:00", m).is_err(), "after year 9999");
        assert!(parse_timestamp("9000000000000", S).unwrap_err().why.contains("out of range"));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "abc",
            "2014-13-01 00:00:00",
            "2014-02-30 00:00:00",
            "2014-01-01 25:00:00",
            "2014-01-01 00:00:00x",
            "2014-01-01T00:00:00+5",
            "inf",
            "NaN",
            "1e400",
        ] {
            assert!(parse_timestamp(bad, S).is_err(), "{bad:?} should be refused");
        }
        let e = parse_timestamp("nope", S).unwrap_err().to_string();
        assert!(e.starts_with("unparsable timestamp \"nope\""), "{e}");
    }

    #[test]
    fn format() {
        assert_eq!(format_rfc3339(1_388_534_400_250), "2014-01-01T00:00:00.250Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    proptest! {
        #[test]
        fn civil_round_trip(z in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(z);
            prop_assert_eq!(days_from_civil(y, m, d), z);
        }

        #[test]
        fn rfc3339_round_trip(ms in -10_000_000_000_000i64..10_000_000_000_000) {
            prop_assert_eq!(parse_timestamp(&format_rfc3339(ms), S).unwrap(), ms);
        }

        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = parse_timestamp(&s, S);
            let _ = parse_timestamp(&s, NumericUnit::Millis);
        }
    }
}
