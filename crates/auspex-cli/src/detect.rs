//! `auspex detect`.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use auspex_bench::plot::Plot;
use auspex_bench::series_csv::{self, CsvError, Options};
use auspex_core::time::NumericUnit;
use auspex_detect::Config;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{CmdResult, DetectArgs, Failure, TsUnit};

pub fn run(a: &DetectArgs) -> CmdResult {
    if !(0.0..=1.0).contains(&a.sensitivity) {
        return Err(Failure::input(anyhow!(
            "invalid --sensitivity {}: must be within [0, 1] (try 0.5)",
            a.sensitivity
        )));
    }
    let in_name = a.input.display().to_string();
    let (reader, size): (Box<dyn BufRead>, Option<u64>) = if in_name == "-" {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let f = File::open(&a.input).with_context(|| {
            format!("cannot open input {in_name} (check the path; use - for stdin)")
        })?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::with_capacity(1 << 16, f)), size)
    };
    let out_name = a.output.display().to_string();
    let writer: Box<dyn Write> = if out_name == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(File::create(&a.output).with_context(|| {
            format!("cannot create output {out_name} (check that the folder exists)")
        })?)
    };
    let opts = Options {
        config: Config { sensitivity: a.sensitivity, ..Config::default() },
        explain: a.explain,
        unit: match a.ts_unit {
            TsUnit::S => NumericUnit::Seconds,
            TsUnit::Ms => NumericUnit::Millis,
        },
    };
    let bar = match size {
        Some(n) if n > 8 << 20 => {
            let b = ProgressBar::new(n);
            b.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Some(b)
        }
        _ => None,
    };
    let mut plot = a.plot.as_ref().map(|_| Plot::new(1200));
    let res = series_csv::run_observed(
        reader,
        writer,
        &opts,
        |bytes| {
            if let Some(b) = &bar {
                b.set_position(bytes);
            }
        },
        |ts, v, o| {
            if let Some(p) = plot.as_mut() {
                p.add(ts, v, o);
            }
        },
    );
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if let (Ok(_), Some(path), Some(p)) = (&res, &a.plot, &plot) {
        std::fs::write(path, p.svg(&format!("auspex detect: {in_name}"))).with_context(|| {
            format!("cannot write --plot {} (check that the folder exists)", path.display())
        })?;
    }
    match res {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(CsvError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(CsvError::Io(e)) => Err(Failure::input(anyhow!("detect {in_name}: {e}"))),
        Err(e) => Err(Failure::input(anyhow!(
            "detect {in_name}: {e} (expected CSV `timestamp,value`; see auspex detect --help)"
        ))),
    }
}
