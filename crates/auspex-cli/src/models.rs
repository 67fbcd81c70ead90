//! `auspex models list|show|promote|lineage`: the model registry from CI pipelines. They talk
//! to any MLflow-compatible server (`lineage` needs Auspex).

use std::process::ExitCode;

use anyhow::anyhow;
use auspex_mlflow::filter::{Clause, Field, Filter, Op};
use auspex_mlflow::{ModelVersion, RegisteredModel, Run};
use serde_json::{Value, json};

use crate::cli::{
    CmdResult, Failure, ModelsLineageArgs, ModelsListArgs, ModelsPromoteArgs, ModelsServerOpt,
    ModelsShowArgs, say,
};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .into()
}

/// Calls the server; an MLflow error body becomes `<error_code>: <message>`.
fn call(base: &str, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
    let url = format!("{base}{path}");
    let a = agent();
    let res = match (method, body) {
        ("POST", Some(b)) => {
            a.post(&url).header("Content-Type", "application/json").send(b.to_string())
        }
        _ => a.get(&url).call(),
    };
    let mut resp = res.map_err(|e| {
        Failure::input(anyhow!(
            "cannot reach {base}: {e} (is the server running? set --server, $MLFLOW_TRACKING_URI or $AUSPEX_SERVER)"
        ))
    })?;
    let status = resp.status();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        let why = match (v["error_code"].as_str(), v["message"].as_str()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            _ => text.trim().to_string(),
        };
        return Err(Failure::input(anyhow!("{method} {path}: {status}: {why}")));
    }
    Ok(v)
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn parse<T: serde::de::DeserializeOwned>(v: &Value, what: &str) -> Result<T, Failure> {
    serde_json::from_value(v.clone())
        .map_err(|e| Failure::input(anyhow!("unexpected {what} from the server: {e}")))
}

fn version(base: &str, name: &str, v: &str) -> Result<ModelVersion, Failure> {
    let r = call(
        base,
        "GET",
        &format!("/api/2.0/mlflow/model-versions/get?name={}&version={}", enc(name), enc(v)),
        None,
    )?;
    parse(&r["model_version"], "model version")
}

fn run(base: &str, id: &str) -> Result<Run, Failure> {
    let r = call(base, "GET", &format!("/api/2.0/mlflow/runs/get?run_id={}", enc(id)), None)?;
    parse(&r["run"], "run")
}

fn print_json(o: &ModelsServerOpt, v: &Value) -> Result<bool, Failure> {
    if o.json {
        say(&serde_json::to_string_pretty(v).unwrap_or_default())?;
    }
    Ok(o.json)
}

pub fn list(a: &ModelsListArgs) -> CmdResult {
    let base = a.server.url();
    let mut models: Vec<RegisteredModel> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut path = "/api/2.0/mlflow/registered-models/search?max_results=1000".to_string();
        if let Some(t) = &token {
            path.push_str(&format!("&page_token={}", enc(t)));
        }
        let r = call(&base, "GET", &path, None)?;
        let page: Vec<RegisteredModel> =
            parse(r.get("registered_models").unwrap_or(&json!([])), "model list")?;
        models.extend(page);
        token = r["next_page_token"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    if print_json(&a.server, &json!(models))? {
        return Ok(ExitCode::SUCCESS);
    }
    say(&format!("{:<32} {:>8}  ALIASES", "NAME", "LATEST"))?;
    for m in &models {
        let latest = m.latest_versions.iter().filter_map(|v| v.version.parse::<i64>().ok()).max();
        let aliases: Vec<String> =
            m.aliases.iter().map(|x| format!("{}=v{}", x.alias, x.version)).collect();
        say(&format!(
            "{:<32} {:>8}  {}",
            m.name,
            latest.map_or("-".into(), |v| format!("v{v}")),
            aliases.join(" ")
        ))?;
    }
    say(&format!("{} model(s)", models.len()))?;
    Ok(ExitCode::SUCCESS)
}

pub fn show(a: &ModelsShowArgs) -> CmdResult {
    let base = a.server.url();
    let r = call(
        &base,
        "GET",
        &format!("/api/2.0/mlflow/registered-models/get?name={}", enc(&a.name)),
        None,
    )?;
    let m: RegisteredModel = parse(&r["registered_model"], "registered model")?;
    let filter = format!("name = '{}'", a.name.replace('\'', "\\'"));
    let vs = call(
        &base,
        "GET",
        &format!("/api/2.0/mlflow/model-versions/search?filter={}&max_results=1000", enc(&filter)),
        None,
    )?;
    let versions: Vec<ModelVersion> =
        parse(vs.get("model_versions").unwrap_or(&json!([])), "versions")?;
    if print_json(&a.server, &json!({"registered_model": m, "model_versions": versions}))? {
        return Ok(ExitCode::SUCCESS);
    }
    say(&format!(
        "model {}{}",
        m.name,
        if m.description.is_empty() { String::new() } else { format!(": {}", m.description) }
    ))?;
    say(&format!("{:>8}  {:<10} {:<8} {:<34} ALIASES", "VERSION", "STAGE", "STATUS", "RUN"))?;
    for v in &versions {
        say(&format!(
            "{:>8}  {:<10} {:<8} {:<34} {}",
            format!("v{}", v.version),
            v.current_stage,
            v.status,
            v.run_id,
            v.aliases.join(" ")
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn lineage(a: &ModelsLineageArgs) -> CmdResult {
    let base = a.server.url();
    let r = call(
        &base,
        "GET",
        &format!("/auspex/v1/models/{}/versions/{}/lineage", enc(&a.name), enc(&a.model_version)),
        None,
    )?;
    if print_json(&a.server, &r)? {
        return Ok(ExitCode::SUCCESS);
    }
    let mv = &r["model_version"];
    let l = &r["lineage"];
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    say(&format!(
        "model {} v{}  ({}, {})",
        a.name,
        a.model_version,
        s(&mv["current_stage"]),
        s(&mv["status"])
    ))?;
    say(&format!(
        "  registered by {} at {}",
        s(&mv["user_id"]),
        ms_text(&mv["creation_timestamp"])
    ))?;
    say(&format!("  source       {}", s(&mv["source"])))?;
    say(&format!("  run          {} (experiment {})", s(&l["run_id"]), s(&l["experiment_id"])))?;
    say(&format!("  git commit   {}", s(&l["git_commit"])))?;
    say(&format!("  code         {}", s(&l["source_name"])))?;
    let ds = l["datasets"].as_array().cloned().unwrap_or_default();
    if ds.is_empty() {
        say("  datasets     -")?;
    }
    for d in ds {
        say(&format!(
            "  dataset      {} digest {} ({})",
            s(&d["name"]),
            s(&d["digest"]),
            s(&d["source_type"])
        ))?;
    }
    if let Some(m) = r["run"]["data"]["metrics"].as_array() {
        let ms: Vec<String> =
            m.iter().map(|x| format!("{}={}", s(&x["key"]), x["value"])).collect();
        say(&format!("  run metrics  {}", if ms.is_empty() { "-".into() } else { ms.join(" ") }))?;
    }
    say("  history")?;
    for e in r["audit"].as_array().cloned().unwrap_or_default() {
        let change = match (e["from"].as_str(), e["to"].as_str()) {
            (Some(f), Some(t)) => format!("{f} -> {t}"),
            (None, Some(t)) => t.to_string(),
            (Some(f), None) => format!("{f} removed"),
            _ => String::new(),
        };
        let v = e["version"].as_i64().map_or(String::new(), |v| format!(" v{v}"));
        say(&format!(
            "    {}  {:<16}{} {}  by {}",
            ms_text(&e["at_ms"]),
            s(&e["action"]),
            v,
            change,
            s(&e["who"])
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn ms_text(v: &Value) -> String {
    v.as_i64().map_or("-".into(), auspex_core::time::format_rfc3339)
}

/// Whether higher is better for `metric`: `--higher-is-better M` / `--lower-is-better M`, else
/// the direction of its `--require` comparison (`>`/`>=` higher, `<`/`<=` lower), else higher.
fn higher_is_better(a: &ModelsPromoteArgs, metric: &str, clauses: &[Clause]) -> bool {
    if a.higher_is_better.iter().any(|m| m == metric) {
        return true;
    }
    if a.lower_is_better.iter().any(|m| m == metric) {
        return false;
    }
    !clauses.iter().any(|c| {
        matches!(&c.field, Field::Metric(k) if k == metric) && matches!(c.op, Op::Lt | Op::Le)
    })
}

pub fn promote(a: &ModelsPromoteArgs) -> CmdResult {
    let base = a.server.url();
    // Usage errors first (exit 2): the gates must parse.
    // Each clause with the --require text it came from (for messages).
    let mut gates: Vec<(Clause, &str)> = Vec::new();
    for r in &a.require {
        let f = Filter::parse(r).map_err(|e| Failure::input(anyhow!("--require {r:?}: {e}")))?;
        gates.extend(f.clauses.into_iter().map(|c| (c, r.as_str())));
    }
    let clauses: Vec<Clause> = gates.iter().map(|(c, _)| c.clone()).collect();
    if a.vs.is_some() && !clauses.iter().any(|c| matches!(c.field, Field::Metric(_))) {
        return Err(Failure::input(anyhow!(
            "--vs compares the metrics named in --require; give at least one (e.g. --require 'metrics.accuracy >= 0.9')"
        )));
    }
    let mv = version(&base, &a.name, &a.model_version)?;
    if mv.run_id.is_empty() && !clauses.is_empty() {
        return Err(Failure::failed(anyhow!(
            "gate failed: {} v{} has no source run, so --require cannot be checked",
            a.name,
            a.model_version
        )));
    }
    let mut failures: Vec<String> = Vec::new();
    let mut checks: Vec<Value> = Vec::new();
    let candidate = if mv.run_id.is_empty() { None } else { Some(run(&base, &mv.run_id)?) };
    if let Some(r) = &candidate {
        for (c, text) in &gates {
            let ok = Filter { clauses: vec![c.clone()] }.matches(r);
            checks.push(json!({"require": text, "ok": ok}));
            if !ok {
                failures.push(format!(
                    "{text} does not hold for v{} ({})",
                    a.model_version,
                    describe(r, &c.field)
                ));
            }
        }
    }
    if let (Some(alias), Some(cand)) = (&a.vs, &candidate) {
        let cur = call(
            &base,
            "GET",
            &format!(
                "/api/2.0/mlflow/registered-models/alias?name={}&alias={}",
                enc(&a.name),
                enc(alias)
            ),
            None,
        );
        match cur {
            Err(_) => checks.push(
                json!({"vs": alias, "ok": true, "note": "no current version holds the alias"}),
            ),
            Ok(cur) => {
                let cur: ModelVersion = parse(&cur["model_version"], "model version")?;
                let champ = run(&base, &cur.run_id)?;
                let mut seen: Vec<&str> = Vec::new();
                for c in &clauses {
                    let Field::Metric(m) = &c.field else { continue };
                    if seen.contains(&m.as_str()) {
                        continue;
                    }
                    seen.push(m);
                    let higher = higher_is_better(a, m, &clauses);
                    let (x, y) = (cand.metric(m), champ.metric(m));
                    let ok = match (x, y) {
                        (Some(x), Some(y)) => {
                            if higher {
                                x >= y
                            } else {
                                x <= y
                            }
                        }
                        (Some(_), None) => true,
                        (None, _) => false,
                    };
                    checks.push(json!({"metric": m, "candidate": x, alias: y, "higher_is_better": higher, "ok": ok}));
                    if !ok {
                        failures.push(format!(
                            "metrics.{m}: v{} has {} but {alias} (v{}) has {} ({} is better)",
                            a.model_version,
                            x.map_or("no value".into(), |v| v.to_string()),
                            cur.version,
                            y.map_or("no value".into(), |v| v.to_string()),
                            if higher { "higher" } else { "lower" }
                        ));
                    }
                }
            }
        }
    }
    if !failures.is_empty() {
        if a.server.json {
            say(&serde_json::to_string_pretty(
                &json!({"promoted": false, "checks": checks, "failures": failures}),
            )
            .unwrap_or_default())?;
        }
        return Err(Failure::failed(anyhow!("gate failed: {}", failures.join("; "))));
    }
    call(
        &base,
        "POST",
        "/api/2.0/mlflow/registered-models/alias",
        Some(&json!({"name": a.name, "alias": a.alias, "version": a.model_version})),
    )?;
    if a.server.json {
        say(&serde_json::to_string_pretty(
            &json!({"promoted": true, "alias": a.alias, "version": a.model_version, "checks": checks}),
        )
        .unwrap_or_default())?;
    } else {
        say(&format!(
            "promoted {} v{} to @{} ({} check(s) passed)",
            a.name,
            a.model_version,
            a.alias,
            checks.len()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(r: &Run, f: &Field) -> String {
    match f {
        Field::Metric(k) => {
            r.metric(k).map_or(format!("metrics.{k} not logged"), |v| format!("metrics.{k} = {v}"))
        }
        Field::Param(k) => {
            r.param(k).map_or(format!("params.{k} not logged"), |v| format!("params.{k} = '{v}'"))
        }
        Field::Tag(k) => {
            r.tag(k).map_or(format!("tags.{k} not set"), |v| format!("tags.{k} = '{v}'"))
        }
        Field::NumAttr(k) | Field::StrAttr(k) => format!("attribute {k}"),
    }
}
