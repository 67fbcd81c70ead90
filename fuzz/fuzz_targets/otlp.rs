//! OTLP trace decoding never panics, in protobuf or JSON, and what it accepts builds a
//! service graph without panicking either.
#![no_main]
use auspex_ingest::otlp::{decode_json, decode_protobuf};
use auspex_rca::spans::ServiceGraph;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut g = ServiceGraph::new(64, 10_000);
    for spans in [decode_protobuf(data, 1000), decode_json(data, 1000)].into_iter().flatten() {
        assert!(spans.len() <= 1000);
        g.add(&spans);
        let _ = g.take_red(true);
    }
});
