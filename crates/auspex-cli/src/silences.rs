//! `auspex silences add|list|expire`: silences on a server.

use std::process::ExitCode;

use serde_json::{Value, json};

use crate::cli::{CmdResult, SilenceAddArgs, SilenceExpireArgs, SilencesListArgs, say};
use crate::client::{get_json, post_json};
use crate::incidents::{s as text, who};

fn matchers(v: &Value) -> String {
    let list: Vec<&str> = v["matchers"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    list.join(" ")
}

fn line(v: &Value) -> String {
    format!(
        "{:<16}  {:<8} {:<24} {:<24} {:<12} {:<32} {}",
        text(v, "id"),
        text(v, "state"),
        text(v, "starts"),
        text(v, "ends"),
        text(v, "created_by"),
        matchers(v),
        v["comment"].as_str().unwrap_or("")
    )
}

const HEADER: &str = "ID                STATE    STARTS                   ENDS                     BY           MATCHERS                         COMMENT";

pub fn add(a: &SilenceAddArgs) -> CmdResult {
    let mut body = json!({"matchers": a.matchers, "comment": a.comment, "by": who(&a.by)});
    for (k, v) in [("starts", &a.starts), ("ends", &a.ends), ("duration", &a.duration)] {
        if let Some(v) = v {
            body[k] = json!(v);
        }
    }
    let v = post_json(&a.server.url(), "/auspex/v1/silences", &body)?;
    print_one(a.server.json, &v, "created")
}

pub fn expire(a: &SilenceExpireArgs) -> CmdResult {
    let path = format!("/auspex/v1/silences/{}/expire", a.id);
    let v = post_json(&a.server.url(), &path, &json!({}))?;
    print_one(a.server.json, &v, "expired")
}

fn print_one(as_json: bool, v: &Value, what: &str) -> CmdResult {
    if as_json {
        say(&serde_json::to_string_pretty(v).unwrap_or_default())?;
    } else {
        let s = &v["silence"];
        say(&format!(
            "silence {} {what}: {} from {} to {} ({})",
            text(s, "id"),
            matchers(s),
            text(s, "starts"),
            text(s, "ends"),
            text(s, "state")
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn list(a: &SilencesListArgs) -> CmdResult {
    let v = get_json(&a.server.url(), &format!("/auspex/v1/silences?state={}", a.state))?;
    if a.server.json {
        say(&serde_json::to_string_pretty(&v).unwrap_or_default())?;
        return Ok(ExitCode::SUCCESS);
    }
    let items = v["silences"].as_array().cloned().unwrap_or_default();
    say(HEADER)?;
    for s in &items {
        say(&line(s))?;
    }
    say(&format!("{} silence(s)", items.len()))?;
    Ok(ExitCode::SUCCESS)
}
