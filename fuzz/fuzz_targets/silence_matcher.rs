//! A silence matcher from user input never panics; one that parses prints as text that parses
//! back to the same matcher (what the store and the API show), and matching any labels is total.
#![no_main]
use auspex_core::Labels;
use auspex_incidents::silence::{MAX_MATCHER_BYTES, Matcher};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let (spec, value) = s.split_once('\n').unwrap_or((s, ""));
    let Ok(m) = Matcher::parse(spec) else { return };
    let shown = m.to_string();
    if shown.len() <= MAX_MATCHER_BYTES {
        let back = Matcher::parse(&shown);
        assert_eq!(back.as_ref().ok(), Some(&m), "{spec:?} shown as {shown:?}: {back:?}");
    }
    let labels = Labels::from_pairs([(m.name.as_str(), value)]).unwrap_or_default();
    let _ = m.matches(&labels);
});
