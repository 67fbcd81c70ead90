//! `auspex bench alerts`: an alert load for Auspex's Alertmanager webhook
//! (`POST /auspex/v1/alertmanager`) or for Alertmanager's own API (`POST /api/v2/alerts`), so
//! that alert intake can be measured side by side with the same generator.
//!
//! - A universe of `--alerts N` label sets: `alertname` `BenchAlert{i % 50}`, `service`
//!   `svc-{(i / 50) % 200}`, `instance` `host-{i}`, `severity` `warning`; alert `i` starts
//!   `i / N` of an hour after a start two hours ago.
//! - `--mode new`: every alert posted is a new occurrence (its `startsAt` moves on 10 ms each
//!   round through the universe), which the receiver must store and group; `--mode redeliver`: the same N firing alerts again and again, as Prometheus and
//!   Alertmanager re-send them every interval.
//! - Requests carry `--per-request` alerts; connection `k` sends chunks `k, k + C, ...` of
//!   every round, so each alert's occurrences go over one connection, in order.

use std::fmt::Write as _;

use anyhow::anyhow;

use crate::cli::{AlertsArgs, CmdResult, Failure};
use crate::loadgen::{Load, Source, drive};

/// The JSON of firing alert `i` starting at `start`.
fn alert_json(i: usize, start: &str) -> String {
    format!(
        "{{\"status\":\"firing\",\"labels\":{{\"alertname\":\"BenchAlert{}\",\"service\":\"svc-{}\",\
         \"instance\":\"host-{i}\",\"severity\":\"warning\"}},\"annotations\":{{\"summary\":\"bench alert {i}\"}},\
         \"startsAt\":\"{start}\",\"generatorURL\":\"http://127.0.0.1/bench\"}}",
        i % 50,
        (i / 50) % 200
    )
}

/// The body of chunk `from..to` of a universe of `n` alerts: alert `i` starts at `t0` plus
/// `i / n` of an hour (so they do not all start together).
fn body(webhook: bool, from: usize, to: usize, n: usize, t0: i64) -> Vec<u8> {
    let mut alerts = String::with_capacity((to - from) * 220);
    for i in from..to {
        if i > from {
            alerts.push(',');
        }
        let start = t0 + (i as i64 * 3_600_000) / n.max(1) as i64;
        alerts.push_str(&alert_json(i, &auspex_core::time::format_rfc3339(start)));
    }
    let mut out = String::with_capacity(alerts.len() + 100);
    if webhook {
        let _ = write!(
            out,
            "{{\"version\":\"4\",\"status\":\"firing\",\"receiver\":\"bench\",\"groupKey\":\"{{}}\",\"alerts\":[{alerts}]}}"
        );
    } else {
        let _ = write!(out, "[{alerts}]");
    }
    out.into_bytes()
}

pub fn run(a: &AlertsArgs) -> CmdResult {
    let webhook = match a.api.as_str() {
        "webhook" => true,
        "alertmanager" => false,
        other => {
            return Err(Failure::input(anyhow!(
                "bench alerts: --api {other:?}: use webhook (Auspex) or alertmanager (Alertmanager's /api/v2/alerts)"
            )));
        }
    };
    let new = match a.mode.as_str() {
        "new" => true,
        "redeliver" => false,
        other => {
            return Err(Failure::input(anyhow!(
                "bench alerts: --mode {other:?}: use new or redeliver"
            )));
        }
    };
    if a.alerts == 0
        || a.per_request == 0
        || a.load.concurrency == 0
        || a.load.duration.is_nan()
        || a.load.duration <= 0.0
    {
        return Err(Failure::input(anyhow!(
            "bench alerts: --alerts, --per-request, --concurrency and --duration must be positive"
        )));
    }
    let chunks = a.alerts.div_ceil(a.per_request);
    let conc = a.load.concurrency.min(chunks).max(1);
    let t0 = auspex_server::http::now_ms() - 2 * 3_600_000;
    let (n, per) = (a.alerts, a.per_request);
    let sources: Vec<Source> = (0..conc)
        .map(|k| {
            let (mut round, mut chunk) = (0i64, k);
            let next: Source = Box::new(move || {
                if chunk >= chunks {
                    round += 1;
                    chunk = k;
                }
                let (from, to) = (chunk * per, ((chunk + 1) * per).min(n));
                chunk += conc;
                let r = if new { round * 10 } else { 0 };
                Some((body(webhook, from, to, n, t0 + r), to - from))
            });
            next
        })
        .collect();
    let load = Load {
        name: "alerts",
        unit: "alerts",
        target: a.target.clone(),
        headers: vec![("Content-Type", "application/json")],
        duration: a.load.duration,
        target_pid: a.load.target_pid,
        json: a.load.json.clone(),
        describe: vec![
            ("api", a.api.clone()),
            ("mode", a.mode.clone()),
            ("alerts", n.to_string()),
            ("per_request", per.to_string()),
            ("concurrency", conc.to_string()),
        ],
    };
    drive(&load, sources)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bodies_are_valid_json_in_both_formats() {
        let w: serde_json::Value = serde_json::from_slice(&body(true, 3, 6, 10, 0)).unwrap();
        assert_eq!(w["version"], "4");
        assert_eq!(w["alerts"].as_array().unwrap().len(), 3);
        assert_eq!(w["alerts"][0]["labels"]["instance"], "host-3");
        let am: serde_json::Value = serde_json::from_slice(&body(false, 0, 2, 10, 0)).unwrap();
        assert_eq!(am.as_array().unwrap().len(), 2);
        assert_eq!(am[1]["labels"]["alertname"], "BenchAlert1");
        assert_eq!(am[1]["startsAt"], "1970-01-01T00:06:00.000Z", "a tenth of an hour later");
    }
}
