//! The remote-write decoder never panics; every parsed series yields an id, and validation
//! either builds labels whose id matches or explains why not.
#![no_main]
use auspex_ingest::remote_write::{Limits, compress, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    for body in [data.to_vec(), compress(data)] {
        if let Ok(req) = decode(&body, &limits) {
            let mut samples = 0;
            for s in req.series() {
                samples += s.samples().len();
                let id = s.id();
                if let Ok(labels) = s.validate(&limits) {
                    assert_eq!(labels.series_id(), id);
                }
            }
            assert_eq!(samples, req.sample_count());
        }
    }
});
