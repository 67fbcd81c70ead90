//! `auspex incidents list|show|ack|resolve|merge|split`: incidents on a server.

use std::process::ExitCode;

use serde_json::{Value, json};

use crate::cli::{
    CmdResult, IncidentActionArgs, IncidentMergeArgs, IncidentShowArgs, IncidentSplitArgs,
    IncidentsListArgs, say,
};
use crate::client::{get_json, post_json};

/// Field `k` of `v` as text, `-` when absent.
pub(crate) fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("-")
}

fn services(v: &Value) -> String {
    let list: Vec<&str> = v["services"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    list.join(",")
}

pub fn list(a: &IncidentsListArgs) -> CmdResult {
    let path = format!("/auspex/v1/incidents?status={}&limit={}", a.status, a.limit);
    let v = get_json(&a.server.url(), &path)?;
    if a.server.json {
        say(&serde_json::to_string_pretty(&v).unwrap_or_default())?;
        return Ok(ExitCode::SUCCESS);
    }
    let items = v["incidents"].as_array().cloned().unwrap_or_default();
    say(&format!(
        "{:<16}  {:<12} {:<8} {:<24} {:>7}  {:<24} TITLE",
        "ID", "STATUS", "SEVERITY", "OPENED", "SIGNALS", "SERVICES"
    ))?;
    for i in &items {
        let mut flap =
            if i["flapping"].as_bool() == Some(true) { " (flapping)" } else { "" }.to_string();
        if i["withheld"].as_array().is_some_and(|w| !w.is_empty()) {
            flap.push_str(" (silenced)");
        }
        say(&format!(
            "{:<16}  {:<12} {:<8} {:<24} {:>7}  {:<24} {}{flap}",
            s(i, "id"),
            s(i, "status"),
            s(i, "severity"),
            s(i, "opened"),
            i["signal_count"].as_u64().unwrap_or(0),
            services(i),
            s(i, "title"),
        ))?;
    }
    say(&format!("{} incident(s)", items.len()))?;
    Ok(ExitCode::SUCCESS)
}

pub fn show(a: &IncidentShowArgs) -> CmdResult {
    let v = get_json(&a.server.url(), &format!("/auspex/v1/incidents/{}", a.id))?;
    if a.server.json {
        say(&serde_json::to_string_pretty(&v).unwrap_or_default())?;
        return Ok(ExitCode::SUCCESS);
    }
    let i = &v["incident"];
    say(&format!("incident {}: {}", s(i, "id"), s(i, "title")))?;
    say(&format!(
        "status {}  severity {}  opened {}  last signal {}{}",
        s(i, "status"),
        s(i, "severity"),
        s(i, "opened"),
        s(i, "last_signal"),
        if i["flapping"].as_bool() == Some(true) { "  flapping" } else { "" }
    ))?;
    if let Some(r) = i["resolved"].as_str() {
        say(&format!("resolved {r} by {}", s(i, "resolved_by")))?;
    }
    say(&format!("services: {}", services(i)))?;
    let unsent: Vec<&str> =
        (i["unsent"].as_array().into_iter().flatten()).filter_map(|u| u.as_str()).collect();
    if !unsent.is_empty() {
        say(&format!("notifications not yet sent: {}", unsent.join(", ")))?;
    }
    let withheld: Vec<&str> =
        (i["withheld"].as_array().into_iter().flatten()).filter_map(|u| u.as_str()).collect();
    if !withheld.is_empty() {
        say(&format!("notifications held back by a silence: {}", withheld.join(", ")))?;
    }
    say("")?;
    let sigs = i["signals"].as_array().cloned().unwrap_or_default();
    say(&format!("signals ({} distinct, {} in all):", sigs.len(), i["signal_count"]))?;
    say(&format!(
        "  {:<16}  {:<24} {:<24} {:<4} {:<5} TITLE",
        "FINGERPRINT", "START", "END", "N", "SCORE"
    ))?;
    for m in &sigs {
        let end = m["end"].as_str().unwrap_or("active");
        say(&format!(
            "  {:<16}  {:<24} {:<24} x{:<3} {:.2}  {}",
            s(m, "fingerprint"),
            s(m, "start"),
            end,
            m["occurrences"].as_u64().unwrap_or(1),
            m["score"].as_f64().unwrap_or(0.0),
            s(m, "title")
        ))?;
    }
    let causes = v["root_causes"].as_array().cloned().unwrap_or_default();
    say("")?;
    say(&format!("likely root causes ({}):", causes.len()))?;
    for (k, c) in causes.iter().enumerate() {
        say(&format!(
            "  {}. {:<24} score {:>5.2}  {}",
            k + 1,
            s(c, "service"),
            c["score"].as_f64().unwrap_or(0.0),
            s(c, "explanation")
        ))?;
    }
    let changes = v["changes"].as_array().cloned().unwrap_or_default();
    say("")?;
    say(&format!("changes in the window ({}):", changes.len()))?;
    for c in &changes {
        let l = &c["labels"];
        say(&format!(
            "  {:<24} {} {} {}  {}",
            s(c, "start"),
            l["change_kind"].as_str().unwrap_or("change"),
            l["service"].as_str().unwrap_or(""),
            l["version"].as_str().unwrap_or(""),
            c["explanation"]["message"].as_str().unwrap_or("")
        ))?;
    }
    say("")?;
    say("timeline:")?;
    for e in i["timeline"].as_array().cloned().unwrap_or_default() {
        say(&format!("  {:<24} {:<14} {}", s(&e, "time"), s(&e, "event"), s(&e, "detail")))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn who(by: &Option<String>) -> String {
    by.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "cli".into())
}

pub fn act(a: &IncidentActionArgs, what: &str) -> CmdResult {
    let path = format!("/auspex/v1/incidents/{}/{what}", a.id);
    reply(a.server.json, post_json(&a.server.url(), &path, &json!({"by": who(&a.by)}))?)
}

pub fn merge(a: &IncidentMergeArgs) -> CmdResult {
    let path = format!("/auspex/v1/incidents/{}/merge", a.id);
    let body = json!({"by": who(&a.by), "from": a.from});
    reply(a.server.json, post_json(&a.server.url(), &path, &body)?)
}

pub fn split(a: &IncidentSplitArgs) -> CmdResult {
    let path = format!("/auspex/v1/incidents/{}/split", a.id);
    let body = json!({"by": who(&a.by), "signals": a.signals});
    let v = post_json(&a.server.url(), &path, &body)?;
    if !a.server.json {
        let n = &v["split"];
        say(&format!(
            "split {} signal(s) into new incident {} ({})",
            n["signals"].as_array().map_or(0, Vec::len),
            s(n, "id"),
            s(n, "title")
        ))?;
    }
    reply(a.server.json, v)
}

fn reply(as_json: bool, v: Value) -> CmdResult {
    if as_json {
        say(&serde_json::to_string_pretty(&v).unwrap_or_default())?;
    } else {
        let i = &v["incident"];
        say(&format!(
            "incident {} is {} ({}, {} signal(s))",
            s(i, "id"),
            s(i, "status"),
            s(i, "title"),
            i["signal_count"]
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
