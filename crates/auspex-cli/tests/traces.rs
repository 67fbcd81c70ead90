//! OTLP/HTTP traces end to end: the official OpenTelemetry Python SDK and its OTLP/HTTP
//! exporter (in the venv `scripts/test.sh` creates) send spans to `auspex serve`, children
//! before parents; the service graph comes out right. JSON bodies, bad input and limits too.
//! 127.0.0.1 only.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use auspex_testkit::{output, temp_dir};
use serde_json::{Value, json};

mod common;
use common::agent;

/// The venv Python with the OpenTelemetry SDK; fails (never skips) with the install hint.
fn python() -> PathBuf {
    common::venv_python(
        "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http",
        "the OpenTelemetry SDK",
        ".venv/bin/pip install opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2",
    )
}

fn get(addr: std::net::SocketAddr, path: &str) -> Value {
    let mut r = agent().get(&format!("http://{addr}{path}")).call().unwrap();
    serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
}

fn post(
    addr: std::net::SocketAddr,
    ctype: &str,
    extra: Option<(&str, &str)>,
    body: &[u8],
) -> (u16, String) {
    let mut req = agent().post(&format!("http://{addr}/v1/traces")).header("Content-Type", ctype);
    if let Some((k, v)) = extra {
        req = req.header(k, v);
    }
    let mut r = req.send(body).unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap_or_default())
}

#[test]
fn the_opentelemetry_sdk_builds_the_service_graph() {
    let py = python();
    let data = temp_dir("traces");
    let (_peer, addr) =
        common::start(&data, "[traces]\nmax_body_bytes = 65536\nmax_spans_per_request = 50\n", &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/otel_send.py");
    let out =
        output(Command::new(&py).arg(&script).arg(format!("http://{addr}/v1/traces")).arg("12"))
            .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let g = get(addr, "/auspex/v1/services");
    let edges: Vec<(String, String, u64)> = g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap().into(),
                e["to"].as_str().unwrap().into(),
                e["calls"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        edges,
        vec![("api".into(), "db".into(), 12), ("web".into(), "api".into(), 12)],
        "{g:#}"
    );
    assert_eq!(g["counts"]["spans"], 36);
    assert!(g["counts"]["relinked"].as_u64().unwrap() >= 12, "children came first: {g:#}");
    assert_eq!(g["counts"]["cycles"], 0);
    // The same exporter with gzip compression (what collectors send by default).
    let out = output(
        Command::new(&py)
            .arg(&script)
            .arg(format!("http://{addr}/v1/traces"))
            .arg("3")
            .env("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"),
    )
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let g = get(addr, "/auspex/v1/services");
    assert_eq!(g["counts"]["spans"], 45, "{g:#}");
    assert_eq!(g["edges"][1]["calls"], 15);

    // The OTLP JSON mapping: a fourth service called by db, ids in hex, int64 as strings.
    let body = json!({"resourceSpans": [
        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cache"}}]},
         "scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "eee19b7ec3c1b174", "parentSpanId": "eee19b7ec3c1b173", "name": "get",
            "kind": 2, "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000100000000",
            "someNewField": 1}]}]},
        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "db"}}]},
         "scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "eee19b7ec3c1b173", "name": "query", "kind": 2,
            "startTimeUnixNano": 1700000000000000000u64, "endTimeUnixNano": 1700000000200000000u64}]}]}]});
    let (code, reply) = post(addr, "application/json", None, body.to_string().as_bytes());
    assert_eq!((code, reply.as_str()), (200, "{}"));
    let g = get(addr, "/auspex/v1/services");
    assert!(
        g["edges"].as_array().unwrap().iter().any(|e| e["from"] == "db" && e["to"] == "cache"),
        "{g:#}"
    );

    // RED series from the (old) JSON spans reached the detectors: rate, errors and duration
    // per service and per call edge.
    let series = get(addr, "/auspex/v1/series");
    let names: Vec<String> =
        series.as_array().unwrap().iter().map(|s| format!("{}", s["labels"])).collect();
    assert!(
        names
            .iter()
            .any(|n| n.contains("auspex_edge_duration_ms") && n.contains("\"caller\":\"db\"")),
        "{names:#?}"
    );
    assert!(
        names.iter().any(|n| n.contains("auspex_service_rate") && n.contains("cache")),
        "{names:#?}"
    );

    // Bad input: clear 4xx, nothing accepted.
    let (code, msg) = post(addr, "application/x-protobuf", None, b"\xff\xff\xff\xff");
    assert_eq!(code, 400, "{msg}");
    assert!(msg.contains("malformed OTLP protobuf"), "{msg}");
    let (code, msg) = post(addr, "application/json", None, b"{\"resourceSpans\": 7}");
    assert_eq!(code, 400);
    assert!(msg.contains("malformed OTLP JSON"), "{msg}");
    let (code, _) = post(addr, "application/json", None, &vec![b' '; 70_000]);
    assert_eq!(code, 413, "body over traces.max_body_bytes");
    let many: Vec<Value> = (0..60)
        .map(|i| json!({"traceId": "5b8efff798038103d269b633813fc60c", "spanId": format!("{:016x}", 1000 + i)}))
        .collect();
    let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": many}]}]});
    let (code, msg) = post(addr, "application/json", None, body.to_string().as_bytes());
    assert_eq!(code, 413, "{msg}");
    let (code, msg) = post(addr, "application/x-protobuf", Some(("Content-Encoding", "br")), b"x");
    assert_eq!(code, 415, "{msg}");
    let (code, msg) =
        post(addr, "application/x-protobuf", Some(("Content-Encoding", "gzip")), b"not gzip");
    assert_eq!(code, 400, "{msg}");
    assert!(msg.contains("malformed gzip"), "{msg}");
    let (code, _) = post(addr, "text/plain", None, b"x");
    assert_eq!(code, 415);
    assert_eq!(
        get(addr, "/auspex/v1/services")["counts"]["spans"],
        47,
        "nothing from bad requests"
    );
}
