//! MLflow search filters and `order_by` clauses from users never panic: parsing either
//! succeeds or gives an error, and what parses can be evaluated and sorted with. `LIKE`
//! patterns are matched in any case without panicking.
#![no_main]
use auspex_mlflow::entities::{Metric, Run, RunData, RunInfo, RunInputs, Tag};
use auspex_mlflow::filter::{Filter, OrderBy, like, sort_runs};
use libfuzzer_sys::fuzz_target;

fn run(id: &str, loss: f64, text: &str) -> Run {
    Run {
        info: RunInfo {
            run_id: id.into(),
            run_uuid: id.into(),
            run_name: text.into(),
            experiment_id: "1".into(),
            user_id: text.into(),
            status: "FINISHED".into(),
            start_time: 1,
            end_time: None,
            artifact_uri: String::new(),
            lifecycle_stage: "active".into(),
        },
        data: RunData {
            metrics: vec![Metric { key: "loss".into(), value: loss, timestamp: 0, step: 0 }],
            params: vec![Tag { key: "alpha".into(), value: text.into() }],
            tags: vec![Tag { key: "mlflow.runName".into(), value: text.into() }],
        },
        inputs: RunInputs::default(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let (a, b) = s.split_at(s.char_indices().nth(s.chars().count() / 2).map_or(0, |(i, _)| i));
    let mut runs = vec![run("a", f64::NAN, a), run("b", 0.5, b), run("c", -1.0, s)];
    if let Ok(f) = Filter::parse(s) {
        for r in &runs {
            let _ = f.matches(r);
        }
    }
    let order: Vec<OrderBy> = s.split(',').filter_map(|c| OrderBy::parse(c).ok()).collect();
    sort_runs(&mut runs, &order);
    let _ = like(a, b, false);
    let _ = like(a, b, true);
});
