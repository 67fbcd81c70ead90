//! The log pipeline never panics: any bytes, any header format text; one row per line.
#![no_main]
use auspex_bench::logs_pipeline::{InputFormat, lines, parse};
use auspex_logs::MinerConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (fmt_bytes, body) = data.split_at(data.iter().position(|&b| b == 0).unwrap_or(0));
    let fmt = std::str::from_utf8(fmt_bytes)
        .ok()
        .and_then(|f| InputFormat::parse(f).ok())
        .unwrap_or(InputFormat::Raw);
    for f in [fmt, InputFormat::Json, InputFormat::Logfmt] {
        let cfg = MinerConfig { max_templates: 8, max_message_bytes: 256, ..MinerConfig::default() };
        let threads = if matches!(f, InputFormat::Json) { 2 } else { 1 };
        let p = parse(body, &f, cfg, threads);
        assert_eq!(p.line_template.len(), lines(body).count());
    }
});
