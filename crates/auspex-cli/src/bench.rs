//! `auspex bench ...`: every bench prints `key=value` lines and accepts `--json FILE`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use auspex_bench::{nab_run, synth};
use auspex_detect::{Config, Detector};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::cli::{BenchDetectArgs, CmdResult, IncidentLoadArgs, NabArgs, RcaArgs, StormArgs, say};

fn write_json(path: Option<&Path>, v: &Value) -> anyhow::Result<()> {
    if let Some(p) = path {
        let text = serde_json::to_string_pretty(v)?;
        std::fs::write(p, text + "\n")
            .with_context(|| format!("cannot write --json {} (check the folder)", p.display()))?;
    }
    Ok(())
}

fn bar(len: u64, msg: &str) -> ProgressBar {
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b.set_message(msg.to_string());
    b
}

pub fn nab(a: &NabArgs) -> CmdResult {
    let b = bar(0, "nab");
    let r = nab_run::run(&a.data, &a.out, Config::default(), |done, total, file| {
        b.set_length(total as u64);
        b.set_position(done as u64);
        b.set_message(file.to_string());
    })
    .with_context(|| format!("bench nab on {} (is it a NAB-shaped folder?)", a.data.display()))?;
    b.finish_and_clear();
    let mut profiles = serde_json::Map::new();
    for p in &r.profiles {
        say(&p.line())?;
        profiles.insert(
            p.profile.to_string(),
            json!({"score": p.score, "threshold": p.threshold, "raw": p.raw,
                   "windows": p.windows, "files": p.files}),
        );
    }
    say(&format!("throughput={:.0} points/s", r.throughput()))?;
    say(&format!("points={}", r.points))?;
    write_json(
        a.json.as_deref(),
        &json!({"bench": "nab", "data": a.data, "profiles": profiles,
                "throughput_points_per_s": r.throughput(), "points": r.points}),
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn detect(a: &BenchDetectArgs) -> CmdResult {
    let cfg = Config::default();
    // Throughput: one series, one thread, a seasonal series long enough to confirm seasons.
    let n = a.points.max(1) as usize;
    let base = synth::seasonal(4 * 2016, 7);
    let span = base.len() as i64 * synth::STEP_5M;
    let mut det = Detector::new(cfg);
    let mut checksum = 0.0;
    let t0 = Instant::now();
    for i in 0..n {
        let (t, v) = base[i % base.len()];
        let t = t + (i / base.len()) as i64 * span;
        checksum += det.update(t, v).score;
    }
    let secs = t0.elapsed().as_secs_f64();
    let throughput = n as f64 / secs.max(1e-9);

    // Heap per series, by the counting allocator: many detectors fed a week each.
    let week = synth::seasonal(3 * 2016, 11);
    let before = auspex_core::alloc::allocated();
    let mut dets: Vec<Detector> = Vec::with_capacity(a.series);
    let vec_bytes = auspex_core::alloc::allocated() - before;
    for s in 0..a.series {
        let mut d = Detector::new(cfg);
        for &(t, v) in &week {
            d.update(t, v + s as f64);
        }
        dets.push(d);
    }
    let after = auspex_core::alloc::allocated();
    let per_series_heap = (after - before - vec_bytes) as f64 / a.series.max(1) as f64;
    let per_series_total = (after - before) as f64 / a.series.max(1) as f64;
    let period = dets.first().and_then(Detector::period_points).unwrap_or(0);
    say(&format!("throughput={throughput:.0} points/s"))?;
    say(&format!("points={n}"))?;
    say(&format!("heap_bytes_per_series={per_series_heap:.0}"))?;
    say(&format!("total_bytes_per_series={per_series_total:.0}"))?;
    say(&format!("period_points={period}"))?;
    say(&format!("checksum={checksum:.6}"))?;
    write_json(
        a.json.as_deref(),
        &json!({"bench": "detect", "throughput_points_per_s": throughput, "points": n,
                "heap_bytes_per_series": per_series_heap,
                "total_bytes_per_series": per_series_total, "period_points": period}),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `bench storm --seeds N`: one line per seed and the medians, with the seeds on which
/// Auspex is purer than time alone at its own compression.
fn storm_seeds(a: &StormArgs, cfg: &auspex_bench::storm::StormConfig) -> CmdResult {
    use auspex_bench::storm::{StormConfig, run};
    if a.plot.is_some() || a.assignments.is_some() {
        return Err(anyhow::anyhow!("--plot and --assignments take one seed (drop --seeds)").into());
    }
    let median = |mut v: Vec<f64>| -> Option<f64> {
        v.retain(|x| x.is_finite());
        v.sort_by(f64::total_cmp);
        (!v.is_empty()).then(|| auspex_bench::median_sorted(&v))
    };
    let fmt = |x: Option<f64>| x.map_or("none".to_string(), |x| format!("{x:.3}"));
    let mut rows = Vec::new();
    for seed in a.seed..a.seed.saturating_add(a.seeds) {
        let r = run(&a.data, &StormConfig { seed, ..cfg.clone() }).with_context(|| {
            format!("bench storm on {} (is it a PetShop-shaped folder?)", a.data.display())
        })?;
        let gain = r.time_only_interpolated.map(|p| r.auspex.purity - p);
        let t95 = r.time_only_at_purity_95.map(|(_, g)| g.compression);
        let am_gain = r.time_only_at_group_by_service.map(|p| r.group_by_service.purity - p);
        say(&format!(
            "seed={seed} alerts={} best_possible_compression={:.3} best_series_apart={:.3} best_at_purity_0.95={:.3}/{:.3} auspex_compression={:.3} auspex_purity={:.3} time_only_interpolated_purity={} gain={} time_only_at_purity_0.95_compression={} alertmanager_group_by_service={:.3}/{:.3} alertmanager_gain={}",
            r.alerts,
            r.best_compression,
            r.best_compression_series_apart,
            r.best_compression_at_purity_95,
            r.best_compression_at_purity_95_series_apart,
            r.auspex.compression,
            r.auspex.purity,
            fmt(r.time_only_interpolated),
            fmt(gain),
            fmt(t95),
            r.group_by_service.compression,
            r.group_by_service.purity,
            fmt(am_gain)
        ))?;
        rows.push(json!({"seed": seed, "alerts": r.alerts, "best_compression": r.best_compression,
            "best_compression_series_apart": r.best_compression_series_apart,
            "best_compression_at_purity_95": r.best_compression_at_purity_95,
            "best_compression_at_purity_95_series_apart": r.best_compression_at_purity_95_series_apart,
            "auspex": {"incidents": r.auspex.incidents, "compression": r.auspex.compression, "purity": r.auspex.purity},
            "time_only_interpolated_purity": r.time_only_interpolated, "gain": gain,
            "time_only_at_purity_95_compression": t95,
            "alertmanager_group_by_service": {"compression": r.group_by_service.compression, "purity": r.group_by_service.purity, "gain": am_gain}}));
    }
    let col = |f: &dyn Fn(&Value) -> Option<f64>| median(rows.iter().filter_map(f).collect());
    let ahead = rows.iter().filter(|r| r["gain"].as_f64().is_some_and(|g| g > 0.0)).count();
    let m_c = col(&|r| r["auspex"]["compression"].as_f64());
    let m_p = col(&|r| r["auspex"]["purity"].as_f64());
    let m_t = col(&|r| r["time_only_interpolated_purity"].as_f64());
    let m_g = col(&|r| r["gain"].as_f64());
    let m_ac = col(&|r| r["alertmanager_group_by_service"]["compression"].as_f64());
    let m_ap = col(&|r| r["alertmanager_group_by_service"]["purity"].as_f64());
    let m_ag = col(&|r| r["alertmanager_group_by_service"]["gain"].as_f64());
    // The target: compression ≥ 0.90 at purity ≥ 0.95. On how many seeds Auspex meets
    // it, and on how many an oracle that keeps background rules apart could.
    let f = |r: &Value, k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    let met = rows
        .iter()
        .filter(|r| f(&r["auspex"], "compression") >= 0.90 && f(&r["auspex"], "purity") >= 0.95)
        .count();
    let reachable =
        rows.iter().filter(|r| f(r, "best_compression_at_purity_95_series_apart") >= 0.90).count();
    let m_b = col(&|r| r["best_compression_at_purity_95_series_apart"].as_f64());
    say(&format!(
        "median seeds={} auspex_compression={} auspex_purity={} time_only_interpolated_purity={} gain={} purer_than_time_only={ahead}/{} alertmanager_group_by_service={}/{} alertmanager_gain={} best_at_purity_0.95_background_rules_apart={} target_0.90_at_0.95_met={met}/{} reachable_by_an_oracle={reachable}/{}",
        rows.len(),
        fmt(m_c),
        fmt(m_p),
        fmt(m_t),
        fmt(m_g),
        rows.len(),
        fmt(m_ac),
        fmt(m_ap),
        fmt(m_ag),
        fmt(m_b),
        rows.len(),
        rows.len()
    ))?;
    write_json(
        a.json.as_deref(),
        &json!({"bench": "storm", "data": a.data, "rules": a.rules, "seeds": rows,
        "median": {"auspex_compression": m_c, "auspex_purity": m_p, "time_only_interpolated_purity": m_t,
                   "gain": m_g, "purer_than_time_only": ahead,
                   "best_compression_at_purity_95_series_apart": m_b,
                   "target_met": met, "target_reachable_by_an_oracle": reachable,
                   "alertmanager_group_by_service": {"compression": m_ac, "purity": m_ap, "gain": m_ag}},
        "window_s": cfg.correlator.window_ms / 1000, "burst_s": cfg.correlator.burst_ms / 1000,
        "onset_hops": cfg.correlator.onset_hops, "busy_onset_hops": cfg.correlator.busy_onset_hops, "eval_interval_s": cfg.eval_ms / 1000}),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The lines both alert benchmarks print: the ceiling (and the one with background rules
/// kept apart, where the storm has background rules), Auspex, and time alone.
fn say_groupings(
    best: f64,
    apart: Option<f64>,
    auspex: &auspex_bench::storm::Grouping,
    time_only: &auspex_bench::storm::Grouping,
) -> Result<(), crate::cli::Failure> {
    say(&format!("best_possible_compression_at_purity_1={best:.3}"))?;
    if let Some(apart) = apart {
        say(&format!("best_possible_compression_background_rules_apart={apart:.3}"))?;
    }
    for (name, g) in [("auspex", auspex), ("time_only_same_window", time_only)] {
        say(&format!(
            "{name} incidents={} compression={:.3} purity={:.3}",
            g.incidents, g.compression, g.purity
        ))?;
    }
    Ok(())
}

pub fn storm(a: &StormArgs) -> CmdResult {
    use auspex_bench::storm::{Grouping, Rules, StormConfig, run};
    let dur = |what: &str, v: &Option<String>, default: i64| -> anyhow::Result<i64> {
        match v {
            None => Ok(default),
            Some(t) => auspex_server::config::parse_duration(t)
                .map(|d| d.as_millis().min(i64::MAX as u128) as i64)
                .map_err(|e| anyhow::anyhow!("--{what} {t:?}: {e}")),
        }
    };
    let mut correlator = StormConfig::default().correlator;
    correlator.window_ms = dur("window", &a.window, correlator.window_ms)?;
    correlator.burst_ms = dur("burst", &a.burst, correlator.burst_ms)?;
    correlator.onset_hops = a.onset_hops;
    if let Some(h) = a.busy_onset_hops {
        correlator.busy_onset_hops = h.0;
    }
    correlator.flap_window_ms = dur("flap-window", &a.flap_window, correlator.flap_window_ms)?;
    if let Some(n) = a.flap_threshold {
        correlator.flap_threshold = n as usize;
    }
    let eval_ms = dur("eval-interval", &a.eval_interval, 0)?;
    if eval_ms > 3_600_000 {
        return Err(anyhow::anyhow!(
            "--eval-interval is at most 1h (got {})",
            a.eval_interval.as_deref().unwrap_or("")
        )
        .into());
    }
    let cfg = StormConfig {
        seed: a.seed,
        cases: a.cases,
        background: a.background,
        rules: if a.rules == "p99" { Rules::P99 } else { Rules::MaxPlus20 },
        eval_ms,
        correlator,
    };
    if a.seeds > 1 {
        return storm_seeds(a, &cfg);
    }
    let r = run(&a.data, &cfg).with_context(|| {
        format!("bench storm on {} (is it a PetShop-shaped folder?)", a.data.display())
    })?;
    let g = |g: &Grouping| json!({"incidents": g.incidents, "compression": g.compression, "purity": g.purity});
    say(&format!(
        "cases={} alerts={} background_alerts={} span_min={:.0} seed={}",
        r.cases.len(),
        r.alerts,
        r.background_alerts,
        r.span_min,
        a.seed
    ))?;
    say_groupings(
        r.best_compression,
        Some(r.best_compression_series_apart),
        &r.auspex,
        &r.time_only,
    )?;
    say(&format!(
        "best_possible_compression_at_purity_0.95={:.3} background_rules_apart={:.3}",
        r.best_compression_at_purity_95, r.best_compression_at_purity_95_series_apart
    ))?;
    match &r.time_only_matched {
        Some((w, m)) => say(&format!(
            "time_only_matched window_min={w:.0} incidents={} compression={:.3} purity={:.3}",
            m.incidents, m.compression, m.purity
        ))?,
        None => say("time_only_matched none (no window up to 24 h compresses as much)")?,
    }
    if let Some((w, g)) = &r.time_only_at_purity_95 {
        say(&format!(
            "time_only_at_purity_0.95 window_s={w} incidents={} compression={:.3} purity={:.3}",
            g.incidents, g.compression, g.purity
        ))?;
    }
    if let Some(p) = r.time_only_interpolated {
        say(&format!(
            "time_only_interpolated compression={:.3} purity={p:.3}",
            r.auspex.compression
        ))?;
    }
    for (name, g, t) in [
        ("alertmanager_group_by_service", &r.group_by_service, r.time_only_at_group_by_service),
        ("alertmanager_group_by_alertname", &r.group_by_alertname, None),
    ] {
        let vs = t.map(|p| format!(" time_only_interpolated_purity={p:.3}")).unwrap_or_default();
        say(&format!(
            "{name} incidents={} compression={:.3} purity={:.3}{vs}",
            g.incidents, g.compression, g.purity
        ))?;
    }
    if let Some(path) = &a.plot {
        let title = format!(
            "alert storm: {} cases, seed {}: {} alerts in {} incidents, purity {:.3}",
            r.cases.len(),
            a.seed,
            r.alerts,
            r.auspex.incidents,
            r.auspex.purity
        );
        std::fs::write(path, auspex_bench::storm::svg(&r.assignments, &title))
            .with_context(|| format!("write {} (is the folder writable?)", path.display()))?;
        say(&format!("plot={}", path.display()))?;
    }
    if let Some(path) = &a.assignments {
        let f = std::fs::File::create(path)
            .with_context(|| format!("create {} (is the folder writable?)", path.display()))?;
        auspex_bench::storm::write_assignments(&r.assignments, f)
            .with_context(|| format!("write {}", path.display()))?;
    }
    write_json(
        a.json.as_deref(),
        &json!({"bench": "storm", "data": a.data, "seed": a.seed, "rules": a.rules, "cases": r.cases,
        "alerts": r.alerts, "background_alerts": r.background_alerts,
        "span_min": r.span_min, "best_compression": r.best_compression,
        "best_compression_series_apart": r.best_compression_series_apart,
        "best_compression_at_purity_95": r.best_compression_at_purity_95,
        "best_compression_at_purity_95_series_apart": r.best_compression_at_purity_95_series_apart,
        "auspex": g(&r.auspex), "time_only": g(&r.time_only),
        "time_only_matched": r.time_only_matched.as_ref().map(|(w, m)| {
            let mut v = g(m);
            v["window_min"] = json!(w);
            v
        }),
        "time_only_interpolated": r.time_only_interpolated.map(|p| json!({"compression": r.auspex.compression, "purity": p})),
        "time_only_at_purity_95": r.time_only_at_purity_95.as_ref().map(|(w, m)| {
            let mut v = g(m);
            v["window_s"] = json!(w);
            v
        }),
        "alertmanager_group_by_service": g(&r.group_by_service),
        "time_only_at_alertmanager_group_by_service": r.time_only_at_group_by_service,
        "alertmanager_group_by_alertname": g(&r.group_by_alertname),
        "window_s": cfg.correlator.window_ms / 1000, "burst_s": cfg.correlator.burst_ms / 1000,
        "onset_hops": cfg.correlator.onset_hops, "busy_onset_hops": cfg.correlator.busy_onset_hops,
        "flap_threshold": cfg.correlator.flap_threshold, "flap_window_s": cfg.correlator.flap_window_ms / 1000,
        "eval_interval_s": cfg.eval_ms / 1000}),
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn incident_load(a: &IncidentLoadArgs) -> CmdResult {
    use auspex_bench::incident_load::{LoadConfig, run};
    let span = auspex_server::config::parse_duration(&a.span)
        .map_err(|e| anyhow::anyhow!("--span {:?}: {e}", a.span))?;
    let mut cfg = LoadConfig {
        seed: a.seed,
        services: a.services,
        faults: a.faults,
        background: a.background,
        span_ms: span.as_millis().min(i64::MAX as u128) as i64,
        ..LoadConfig::default()
    };
    if a.services > 1_000_000 || a.faults.saturating_add(a.background) > 10_000_000 {
        return Err(anyhow::anyhow!(
            "--services is at most 1000000 and --faults + --background at most 10000000 (the load is held in memory)"
        )
        .into());
    }
    if cfg.services < 2 || cfg.span_ms < 1 {
        return Err(anyhow::anyhow!(
            "--services must be at least 2 and --span positive (got {} and {:?})",
            a.services,
            a.span
        )
        .into());
    }
    if let Some(m) = a.max_incidents {
        if m == 0 {
            return Err(anyhow::anyhow!("--max-incidents must be positive").into());
        }
        cfg.correlator.max_incidents = m;
    }
    cfg.correlator.onset_hops = a.onset_hops;
    if let Some(h) = a.busy_onset_hops {
        cfg.correlator.busy_onset_hops = h.0;
    }
    cfg.with_topology = !a.no_topology;
    let b = bar(100, "correlating");
    let r = run(&cfg, |f| b.set_position((f * 100.0) as u64));
    b.finish_and_clear();
    say(&format!(
        "services={} faults={} background={} span={} alerts={}",
        a.services, a.faults, a.background, a.span, r.alerts
    ))?;
    say(&format!(
        "alerts_per_s={:.0} seconds={:.3} observe_p50_us={:.1} observe_p99_us={:.1} observe_max_us={:.0}",
        r.alerts_per_s, r.seconds, r.observe_p50_us, r.observe_p99_us, r.observe_max_us
    ))?;
    say(&format!("peak_incidents={} evicted={}", r.peak_incidents, r.evicted))?;
    say_groupings(r.best_compression, None, &r.grouping, &r.time_only)?;
    if let Some(p) = r.time_only_interpolated {
        say(&format!(
            "time_only_interpolated compression={:.3} purity={p:.3}",
            r.grouping.compression
        ))?;
    }
    write_json(
        a.json.as_deref(),
        &json!({"bench": "incidents", "seed": a.seed, "services": a.services, "faults": a.faults,
        "background": a.background, "span": a.span, "alerts": r.alerts, "alerts_per_s": r.alerts_per_s,
        "seconds": r.seconds, "observe_p50_us": r.observe_p50_us, "observe_p99_us": r.observe_p99_us,
        "observe_max_us": r.observe_max_us, "peak_incidents": r.peak_incidents, "evicted": r.evicted,
        "max_incidents": cfg.correlator.max_incidents, "onset_hops": cfg.correlator.onset_hops, "busy_onset_hops": cfg.correlator.busy_onset_hops, "topology": cfg.with_topology,
        "best_compression": r.best_compression,
        "auspex": {"incidents": r.grouping.incidents, "compression": r.grouping.compression, "purity": r.grouping.purity},
        "time_only": {"incidents": r.time_only.incidents, "compression": r.time_only.compression, "purity": r.time_only.purity},
        "time_only_interpolated": r.time_only_interpolated.map(|p| json!({"compression": r.grouping.compression, "purity": p}))}),
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn rca(a: &RcaArgs) -> CmdResult {
    let r = auspex_bench::rca::run(&a.data, &a.output).with_context(|| {
        format!("bench rca on {} (is it a PetShop-shaped folder?)", a.data.display())
    })?;
    let line = |n: &str, s: &auspex_bench::rca::Scores| {
        format!("{n} cases={} AC@1={:.3} AC@3={:.3} Avg@5={:.3}", r.cases, s.ac1, s.ac3, s.avg5)
    };
    say(&line("auspex", &r.auspex))?;
    say(&line("nsigma", &r.nsigma))?;
    say(&line("baro", &r.baro))?;
    say(&format!("rankings={}", a.output.display()))?;
    let j = |s: &auspex_bench::rca::Scores| json!({"ac1": s.ac1, "ac3": s.ac3, "avg5": s.avg5});
    write_json(
        a.json.as_deref(),
        &json!({"bench": "rca", "data": a.data, "cases": r.cases, "auspex": j(&r.auspex),
                "nsigma": j(&r.nsigma), "baro": j(&r.baro), "rankings": a.output}),
    )?;
    Ok(ExitCode::SUCCESS)
}
