//! Timestamp parsing never panics, and what it accepts round-trips through RFC 3339.
#![no_main]
use auspex_core::time::{NumericUnit, format_rfc3339, parse_timestamp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        for unit in [NumericUnit::Seconds, NumericUnit::Millis] {
            if let Ok(ms) = parse_timestamp(s, unit) {
                // Every time it accepts (years 0000 to 9999), not only the usual ones.
                assert_eq!(parse_timestamp(&format_rfc3339(ms), unit), Ok(ms));
            }
        }
    }
});
