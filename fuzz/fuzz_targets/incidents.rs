//! The incident correlator never panics and keeps its memory bounds, whatever the topology
//! file and whatever sequence of signals, ends, ticks (with incidents handed over), merges,
//! splits, acks and resolutions arrives (bytes before the first 0 are a topology file; the
//! rest, 4 bytes per operation).
#![no_main]
use auspex_core::{Explanation, IncidentId, Labels, Signal, SignalKind};
use auspex_incidents::{Config, Correlator, Topology};
use libfuzzer_sys::fuzz_target;

const SERVICES: [&str; 5] = ["a", "b", "c", "d", "front"];

fuzz_target!(|data: &[u8]| {
    let (topo, ops) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let topo = std::str::from_utf8(topo).ok().and_then(|t| Topology::parse(t).ok());
    let cfg = Config {
        max_incidents: 4,
        max_members: 3,
        max_timeline: 5,
        max_fingerprints: 6,
        onset_hops: ops.first().map(|b| usize::from(b % 4)).filter(|h| *h < 3),
        ..Config::default()
    };
    let mut c = Correlator::new(cfg, topo.unwrap_or_default());
    let mut t = 0i64;
    let mut live: Vec<Signal> = Vec::new();
    for op in ops.chunks(4) {
        let b = |i: usize| op.get(i).copied().unwrap_or(0);
        t += i64::from(b(1)) * 7_000;
        let ids: Vec<IncidentId> = c.incidents().map(|i| i.id).collect();
        let pick = |k: u8| ids.get(usize::from(k) % ids.len().max(1)).copied();
        match b(0) % 8 {
            0..=2 => {
                let svc = SERVICES[usize::from(b(2)) % SERVICES.len()];
                let name = ["A", "B", "C"][usize::from(b(3)) % 3];
                let mut pairs = vec![("alertname", name), ("service", svc)];
                if b(3) & 0x80 != 0 {
                    pairs.push(("namespace", "ns"));
                }
                let labels = Labels::from_pairs(pairs).unwrap_or_default();
                let score = f64::from(b(2)) / 255.0;
                let msg = Explanation::Text { message: String::new() };
                let s = Signal::new(SignalKind::Alert, labels, t, score, msg);
                c.observe(&s);
                live.push(s);
            }
            3 if !live.is_empty() => {
                let mut s = live.swap_remove(usize::from(b(2)) % live.len());
                s.end = Some(t);
                c.observe(&s);
            }
            4 if b(2) % 2 == 0 => {
                c.tick(t);
            }
            4 => {
                // A caller that stores incidents: those "unwritten" (odd ids here) and let go by
                // the tick are handed over, at their state just before.
                let before: Vec<_> = c.incidents().cloned().collect();
                c.tick_keeping(t, |id| id.0 % 2 == 1);
                // (An even id may have an older copy there: one let go for the bound, whose
                // first signal came again and opened the same id.)
                for inc in before.iter().filter(|i| c.get(i.id).is_none() && i.id.0 % 2 == 1) {
                    assert_eq!(c.let_go_copy(inc.id), Some(inc), "handed over as it was");
                }
                if b(3) % 2 == 0 {
                    assert!(c.take_let_go().len() <= 4, "let go bounded by max_incidents");
                }
            }
            5 => {
                if let (Some(a), Some(f)) = (pick(b(2)), pick(b(3))) {
                    let _ = c.merge(a, f, t, "fuzz");
                }
            }
            6 => {
                if let Some(id) = pick(b(2)) {
                    let fps: Vec<_> = c
                        .get(id)
                        .map(|i| i.signals.iter().map(|m| m.fingerprint).collect())
                        .unwrap_or_default();
                    let take: Vec<_> = fps.into_iter().take(usize::from(b(3)) % 3).collect();
                    let _ = c.split(id, &take, t, "fuzz");
                }
            }
            _ => {
                if let Some(id) = pick(b(2)) {
                    let _ =
                        if b(3) % 2 == 0 { c.ack(id, t, "fuzz") } else { c.resolve(id, t, "fuzz") };
                }
                c.add_edge(SERVICES[usize::from(b(2)) % 5], SERVICES[usize::from(b(3)) % 5]);
            }
        }
        assert!(c.incidents().count() <= 4, "max_incidents");
        for i in c.incidents() {
            assert!(i.signals.len() <= 3, "max_members");
            assert!(i.timeline.len() <= 5, "max_timeline");
            assert!(i.signal_count >= i.signals.len() as u64);
            assert!(i.signals.iter().all(|m| m.start >= i.opened), "opened: the first start");
        }
    }
});
