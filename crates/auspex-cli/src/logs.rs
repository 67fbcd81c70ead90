//! `auspex logs parse|templates` and `auspex bench loghub`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use auspex_bench::loghub_run;
use auspex_bench::logs_pipeline::{InputFormat, Parsed, parse_reader as mine, write_csv};
use auspex_logs::MinerConfig;
use serde_json::json;

use crate::cli::{CmdResult, Failure, HdfsArgs, LoghubArgs, LogsParseArgs, LogsTemplatesArgs, say};

fn run(input: &Path, fmt: &str, threads: usize) -> Result<Parsed, Failure> {
    let format = InputFormat::parse(fmt)
        .map_err(|e| Failure::input(anyhow!("logs: {e} (see --help for the syntax)")))?;
    let name = input.display().to_string();
    let p = if name == "-" {
        mine(std::io::stdin().lock(), &format, MinerConfig::default(), threads)
            .context("reading stdin")?
    } else {
        let f = std::fs::File::open(input)
            .with_context(|| format!("cannot read {name} (check the path; use - for stdin)"))
            .map_err(Failure::input)?;
        mine(f, &format, MinerConfig::default(), threads)
            .with_context(|| format!("reading {name}"))?
    };
    if p.invalid_utf8 > 0 {
        eprintln!("note: {} line(s) were not valid UTF-8 and were read lossily", p.invalid_utf8);
    }
    if p.truncated > 0 {
        eprintln!(
            "note: {} line(s) were longer than {} bytes; only their start was read",
            p.truncated,
            auspex_bench::logs_pipeline::MAX_LINE_BYTES
        );
    }
    if p.unmatched > 0 && !matches!(format, InputFormat::Raw) {
        eprintln!("note: {} line(s) did not match the format and were mined whole", p.unmatched);
    }
    Ok(p)
}

pub fn parse(a: &LogsParseArgs) -> CmdResult {
    let p = run(&a.input, &a.log_format, a.threads)?;
    let name = a.output.display().to_string();
    let res = if name == "-" {
        write_csv(&p, std::io::stdout().lock())
    } else {
        let f =
            std::fs::File::create(&a.output).with_context(|| format!("cannot create {name}"))?;
        write_csv(&p, f)
    };
    match res {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(Failure::input(anyhow!("logs parse: writing {name}: {e}"))),
    }
}

pub fn templates(a: &LogsTemplatesArgs) -> CmdResult {
    let p = run(&a.input, &a.log_format, 1)?;
    let ph = p.miner.config().placeholder.clone();
    let mut ts: Vec<_> = p.miner.templates();
    ts.sort_by(|x, y| y.count.cmp(&x.count).then(x.id.cmp(&y.id)));
    if a.json {
        let mut reminer = auspex_logs::Miner::restore(MinerConfig::default(), p.miner.snapshot())
            .map_err(|e| Failure::input(anyhow!("{e}")))?;
        let v: Vec<_> = ts
            .iter()
            .map(|t| {
                let params = reminer.add(&t.example).params;
                json!({"id": format!("E{}", t.id), "template": t.text(&ph), "count": t.count,
                       "example": t.example, "example_params": params})
            })
            .collect();
        say(&serde_json::to_string_pretty(&v).unwrap_or_default())?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    for t in &ts {
        if writeln!(
            out,
            "E{:<5} {:>8}  {}\n              e.g. {}",
            t.id,
            t.count,
            t.text(&ph),
            t.example
        )
        .is_err()
        {
            return Ok(ExitCode::SUCCESS);
        }
    }
    say(&format!("{} template(s), {} line(s)", ts.len(), p.line_template.len()))?;
    Ok(ExitCode::SUCCESS)
}

pub fn bench_loghub(a: &LoghubArgs) -> CmdResult {
    let formats = a.formats.clone().unwrap_or_else(|| a.data.join("formats.json"));
    let (results, lines, time) =
        loghub_run::run(&a.data, &formats, &a.out, |s| eprint!("\rloghub: {s:<12}"))
            .with_context(|| format!("bench loghub on {}", a.data.display()))?;
    eprintln!();
    say(&format!(
        "{:<12} {:>6} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8}",
        "system", "lines", "truthT", "predT", "GA", "PA", "FGA", "FTA"
    ))?;
    let mut sum = [0.0f64; 4];
    let mut systems = serde_json::Map::new();
    for r in &results {
        let m = &r.accuracy;
        say(&format!(
            "{:<12} {:>6} {:>6} {:>6} {:>8.4} {:>8.4} {:>8.4} {:>8.4}",
            r.system, m.lines, m.truth_templates, m.pred_templates, m.ga, m.pa, m.fga, m.fta
        ))?;
        for (s, v) in sum.iter_mut().zip([m.ga, m.pa, m.fga, m.fta]) {
            *s += v;
        }
        systems.insert(r.system.clone(), serde_json::to_value(m).unwrap_or_default());
    }
    let n = results.len() as f64;
    say(&format!(
        "{:<12} {:>6} {:>6} {:>6} {:>8.4} {:>8.4} {:>8.4} {:>8.4}",
        format!("average({})", results.len()),
        "",
        "",
        "",
        sum[0] / n,
        sum[1] / n,
        sum[2] / n,
        sum[3] / n
    ))?;
    let tput = lines as f64 / time.as_secs_f64().max(1e-9);
    say(&format!("throughput={tput:.0} lines/s"))?;
    if let Some(p) = &a.json {
        let v = json!({"bench": "loghub", "systems": systems, "average": {"GA": sum[0]/n, "PA": sum[1]/n, "FGA": sum[2]/n, "FTA": sum[3]/n}, "throughput_lines_per_s": tput});
        std::fs::write(p, serde_json::to_string_pretty(&v).unwrap_or_default() + "\n")
            .with_context(|| format!("cannot write --json {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn bench_hdfs(a: &HdfsArgs) -> CmdResult {
    let r = auspex_bench::hdfs_sessions::run(&a.train, &a.test)
        .map_err(|e| Failure::input(anyhow!("bench hdfs-sessions: {e}")))?;
    let (p, rc, f) = r.prf();
    let (up, ur, uf) = r.unseen_prf();
    let un: u64 = r.unseen.iter().sum();
    say(&format!("trained_sessions={}", r.trained))?;
    say(&format!("tp={} fp={} fn={} tn={}", r.tp, r.fp, r.fn_, r.tn))?;
    say(&format!("unseen_in_normal_training: precision={up:.4} recall={ur:.4} f1={uf:.4} n={un}"))?;
    if let Some(path) = &a.json {
        let v = json!({"bench": "hdfs-sessions", "precision": p, "recall": rc, "f1": f, "n": r.n(),
                       "counts": r, "unseen": {"precision": up, "recall": ur, "f1": uf, "n": un}});
        std::fs::write(path, serde_json::to_string_pretty(&v).unwrap_or_default() + "\n")
            .with_context(|| format!("cannot write --json {}", path.display()))?;
    }
    say(&format!("hdfs-sessions: precision={p:.4} recall={rc:.4} f1={f:.4} n={}", r.n()))?;
    Ok(ExitCode::SUCCESS)
}
