//! Client commands: `auspex signals list`, `auspex series list`, `auspex events send`.

use std::process::ExitCode;

use anyhow::anyhow;
use serde_json::Value;

use crate::cli::{CmdResult, EventsSendArgs, Failure, SeriesListArgs, SignalsListArgs, say};

/// GETs `url` and parses JSON; errors name the server and suggest `--server`.
pub fn get_json(base: &str, path: &str) -> Result<Value, Failure> {
    let url = format!("{base}{path}");
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut resp = agent.get(&url).call().map_err(|e| {
        Failure::input(anyhow!(
            "cannot reach {base}: {e} (is `auspex serve` running? set --server or $AUSPEX_SERVER)"
        ))
    })?;
    let status = resp.status();
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| Failure::input(anyhow!("reading the reply from {url}: {e}")))?;
    if !status.is_success() {
        return Err(Failure::input(anyhow!("{url}: {status}: {}", body.trim())));
    }
    serde_json::from_str(&body)
        .map_err(|e| Failure::input(anyhow!("{url}: reply is not JSON: {e}")))
}

/// POSTs JSON to `path` and parses the JSON reply; errors carry the server's message.
pub fn post_json(base: &str, path: &str, body: &Value) -> Result<Value, Failure> {
    let url = format!("{base}{path}");
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut resp = agent
        .post(&url)
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .map_err(|e| {
            Failure::input(anyhow!(
                "cannot reach {base}: {e} (is `auspex serve` running? set --server or $AUSPEX_SERVER)"
            ))
        })?;
    let status = resp.status();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    if !status.is_success() {
        let msg = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| text.trim().to_string());
        return Err(Failure::input(anyhow!("{url}: {status}: {msg}")));
    }
    serde_json::from_str(&text)
        .map_err(|e| Failure::input(anyhow!("{url}: reply is not JSON: {e}")))
}

fn labels_text(v: &Value) -> String {
    let Some(m) = v.as_object() else { return String::new() };
    let name = m.get("__name__").and_then(Value::as_str).unwrap_or("");
    let rest: Vec<String> = m
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={:?}", v.as_str().unwrap_or("")))
        .collect();
    format!("{name}{{{}}}", rest.join(", "))
}

pub fn signals(a: &SignalsListArgs) -> CmdResult {
    let base = a.server.url();
    let path = format!("/auspex/v1/signals?since={}&limit={}", a.since, a.limit);
    let v = get_json(&base, &path)?;
    if a.server.json {
        say(&serde_json::to_string_pretty(&v).unwrap_or_default())?;
        return Ok(ExitCode::SUCCESS);
    }
    let items = v.as_array().cloned().unwrap_or_default();
    say(&format!("{:<24} {:<24} {:>6}  {:<8} SERIES", "START", "END", "SCORE", "KIND"))?;
    for s in &items {
        let end = s["end"].as_str().unwrap_or("open");
        say(&format!(
            "{:<24} {:<24} {:>6.3}  {:<8} {}",
            s["start"].as_str().unwrap_or(""),
            end,
            s["score"].as_f64().unwrap_or(0.0),
            s["kind"].as_str().unwrap_or(""),
            labels_text(&s["labels"])
        ))?;
    }
    say(&format!("{} signal(s) since {}", items.len(), a.since))?;
    Ok(ExitCode::SUCCESS)
}

pub fn series(a: &SeriesListArgs) -> CmdResult {
    let base = a.server.url();
    let v = get_json(&base, &format!("/auspex/v1/series?limit={}", a.limit))?;
    if a.server.json {
        say(&serde_json::to_string_pretty(&v).unwrap_or_default())?;
        return Ok(ExitCode::SUCCESS);
    }
    let items = v.as_array().cloned().unwrap_or_default();
    say(&format!("{:<8} {:>9} {:>7} {:<24} SERIES", "STATE", "SAMPLES", "SCORE", "LAST SEEN"))?;
    for s in &items {
        say(&format!(
            "{:<8} {:>9} {:>7.3} {:<24} {}",
            s["state"].as_str().unwrap_or(""),
            s["samples"].as_u64().unwrap_or(0),
            s["last_score"].as_f64().unwrap_or(0.0),
            s["last_seen"].as_str().unwrap_or("-"),
            labels_text(&s["labels"])
        ))?;
    }
    say(&format!("{} series", items.len()))?;
    Ok(ExitCode::SUCCESS)
}

pub fn send_event(a: &EventsSendArgs) -> CmdResult {
    let mut labels = serde_json::Map::new();
    for l in &a.labels {
        let Some((k, v)) = l.split_once('=') else {
            return Err(Failure::input(anyhow!("--label {l:?}: expected KEY=VALUE")));
        };
        labels.insert(k.to_string(), Value::String(v.to_string()));
    }
    let mut body = serde_json::json!({"kind": a.kind, "service": a.service, "labels": labels});
    for (k, v) in [("version", &a.version), ("description", &a.description), ("time", &a.time)] {
        if let Some(v) = v {
            body[k] = Value::String(v.clone());
        }
    }
    let v = post_json(&a.server.url(), "/auspex/v1/events", &body)?;
    if a.server.json {
        say(&serde_json::to_string_pretty(&v).unwrap_or_default())?;
    } else {
        say(&format!(
            "recorded {} of {} at {} (signal {})",
            a.kind,
            a.service,
            v["time"].as_str().unwrap_or("?"),
            v["signal"]["id"].as_str().unwrap_or("?")
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
