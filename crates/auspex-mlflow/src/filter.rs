//! MLflow's search grammar for runs: `metrics.loss < 0.5 and params.alpha = '0.5'`, and
//! `order_by` clauses such as `metrics.loss DESC`.
//!
//! - Clauses are joined by `AND` (any case); there is no `OR`, as in MLflow.
//! - An identifier is `entity.key` with entity `metrics`/`metric`, `params`/`param`/
//!   `parameters`, `tags`/`tag`, or `attributes`/`attribute`/`attr`/`run`; a key without an
//!   entity is an attribute. Keys may be quoted with backticks or double quotes
//!   (``tags.`mlflow.runName` ``).
//! - Metrics and the numeric attributes (`start_time`, `end_time`, `created`) compare numbers
//!   with `= != < <= > >=`. Params, tags and the string attributes (`run_id`, `run_name`,
//!   `status`, `user_id`, `artifact_uri`) take `= != LIKE ILIKE IN NOT IN`, with quoted
//!   strings. A run without the metric, param or tag never matches a clause on it.

use std::cmp::Ordering;

use crate::entities::Run;

/// A filter or ordering that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError(msg.into()))
}

/// What a clause looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// A metric's latest value.
    Metric(String),
    /// A param.
    Param(String),
    /// A tag.
    Tag(String),
    /// A numeric attribute (`start_time`, `end_time`).
    NumAttr(String),
    /// A string attribute.
    StrAttr(String),
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `LIKE`
    Like,
    /// `ILIKE`
    ILike,
    /// `IN`
    In,
    /// `NOT IN`
    NotIn,
}

/// A value to compare with.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number.
    Num(f64),
    /// A string.
    Str(String),
    /// A list of strings (`IN`).
    List(Vec<String>),
}

/// One clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    /// The left side.
    pub field: Field,
    /// The comparison.
    pub op: Op,
    /// The right side.
    pub value: Value,
}

/// A parsed filter: all clauses must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// The clauses.
    pub clauses: Vec<Clause>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Str(String),
    Num(f64),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn lex(s: &str) -> Result<Vec<Tok>, FilterError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            b',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            b'\'' | b'"' | b'`' => {
                let q = c;
                let start = i + 1;
                let mut j = start;
                let mut v = String::new();
                loop {
                    if j >= b.len() {
                        return err(format!("unterminated quote at position {i}"));
                    }
                    if b[j] == q {
                        // A doubled quote is an escaped quote.
                        if b.get(j + 1) == Some(&q) {
                            v.push(q as char);
                            j += 2;
                            continue;
                        }
                        break;
                    }
                    if b[j] == b'\\' && j + 1 < b.len() {
                        j += 1;
                    }
                    let ch = s[j..].chars().next().unwrap_or(' ');
                    v.push(ch);
                    j += ch.len_utf8();
                }
                i = j + 1;
                if q == b'\'' {
                    out.push(Tok::Str(v));
                } else if let Some(Tok::Word(w)) = out.last_mut()
                    && w.ends_with('.')
                {
                    // `metrics."my key"`: the quoted key joins its entity.
                    w.push_str(&v);
                    let w = std::mem::take(w);
                    out.pop();
                    out.push(Tok::Quoted(w));
                } else if q == b'"' && !matches!(out.last(), None | Some(Tok::Word(_))) {
                    // A double-quoted string on the right side is a string value.
                    out.push(Tok::Str(v));
                } else {
                    out.push(Tok::Quoted(v));
                }
            }
            b'=' => {
                out.push(Tok::Op("="));
                i += 1;
            }
            b'!' if b.get(i + 1) == Some(&b'=') => {
                out.push(Tok::Op("!="));
                i += 2;
            }
            b'<' | b'>' => {
                let eq = b.get(i + 1) == Some(&b'=');
                let ne = c == b'<' && b.get(i + 1) == Some(&b'>');
                out.push(Tok::Op(match (c, eq, ne) {
                    (_, _, true) => "!=",
                    (b'<', true, _) => "<=",
                    (b'<', false, _) => "<",
                    (_, true, _) => ">=",
                    _ => ">",
                }));
                i += if eq || ne { 2 } else { 1 };
            }
            b'0'..=b'9' | b'-' | b'+' | b'.' => {
                let start = i;
                i += 1;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric()
                        || b[i] == b'.'
                        || ((b[i] == b'-' || b[i] == b'+') && matches!(b[i - 1], b'e' | b'E')))
                {
                    i += 1;
                }
                let t = &s[start..i];
                match t.parse::<f64>() {
                    Ok(v) => out.push(Tok::Num(v)),
                    Err(_) => return err(format!("invalid number {t:?}")),
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len()
                    && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'-' | b'/'))
                {
                    i += 1;
                }
                out.push(Tok::Word(s[start..i].to_string()));
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or('?');
                return err(format!("unexpected character {ch:?} at position {i}"));
            }
        }
    }
    Ok(out)
}

/// The field an identifier names.
fn field(ident: &str) -> Result<Field, FilterError> {
    let (entity, key) = match ident.split_once('.') {
        Some((e, k)) if !k.is_empty() => (e.to_ascii_lowercase(), k.to_string()),
        _ => ("attributes".to_string(), ident.to_string()),
    };
    Ok(match entity.as_str() {
        "metrics" | "metric" => Field::Metric(key),
        "params" | "param" | "parameters" | "parameter" => Field::Param(key),
        "tags" | "tag" => Field::Tag(key),
        "attributes" | "attribute" | "attr" | "run" => match key.as_str() {
            "start_time" | "created" | "Created" => Field::NumAttr("start_time".into()),
            "end_time" => Field::NumAttr("end_time".into()),
            "run_id" | "run_uuid" => Field::StrAttr("run_id".into()),
            "run_name" | "run name" | "Run name" | "Run Name" => Field::StrAttr("run_name".into()),
            "status" | "user_id" | "artifact_uri" | "lifecycle_stage" => Field::StrAttr(key),
            _ => {
                return err(format!(
                    "invalid attribute key {key:?} (valid: run_id, run_name, status, user_id, \
                     artifact_uri, start_time, end_time)"
                ));
            }
        },
        _ => {
            return err(format!(
                "invalid entity type {entity:?} (valid: metrics, params, tags, attributes)"
            ));
        }
    })
}

impl Filter {
    /// Parses a filter string; an empty string matches everything.
    pub fn parse(s: &str) -> Result<Self, FilterError> {
        let toks = lex(s)?;
        let mut clauses = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            if !clauses.is_empty() {
                match &toks[i] {
                    Tok::Word(w) if w.eq_ignore_ascii_case("and") => i += 1,
                    Tok::Word(w) if w.eq_ignore_ascii_case("or") => {
                        return err("OR is not supported; clauses are joined by AND");
                    }
                    t => return err(format!("expected AND between clauses, found {t:?}")),
                }
            }
            let ident = match toks.get(i) {
                Some(Tok::Word(w) | Tok::Quoted(w)) => w.clone(),
                t => {
                    return err(format!(
                        "expected an identifier such as metrics.loss, found {t:?}"
                    ));
                }
            };
            let f = field(&ident)?;
            i += 1;
            let op = match toks.get(i) {
                Some(Tok::Op(o)) => match *o {
                    "=" => Op::Eq,
                    "!=" => Op::Ne,
                    "<" => Op::Lt,
                    "<=" => Op::Le,
                    ">" => Op::Gt,
                    _ => Op::Ge,
                },
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("like") => Op::Like,
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("ilike") => Op::ILike,
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("in") => Op::In,
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("not") => match toks.get(i + 1) {
                    Some(Tok::Word(x)) if x.eq_ignore_ascii_case("in") => {
                        i += 1;
                        Op::NotIn
                    }
                    _ => return err("expected IN after NOT"),
                },
                t => return err(format!("expected a comparator after {ident}, found {t:?}")),
            };
            i += 1;
            let value = if matches!(op, Op::In | Op::NotIn) {
                if toks.get(i) != Some(&Tok::LParen) {
                    return err("IN takes a parenthesised list of quoted strings");
                }
                i += 1;
                let mut list = Vec::new();
                loop {
                    match toks.get(i) {
                        Some(Tok::Str(v)) => list.push(v.clone()),
                        t => {
                            return err(format!(
                                "expected a quoted string in the IN list, found {t:?}"
                            ));
                        }
                    }
                    i += 1;
                    match toks.get(i) {
                        Some(Tok::Comma) => i += 1,
                        Some(Tok::RParen) => {
                            i += 1;
                            break;
                        }
                        t => return err(format!("expected , or ) in the IN list, found {t:?}")),
                    }
                }
                Value::List(list)
            } else {
                let v = match toks.get(i) {
                    Some(Tok::Num(n)) => Value::Num(*n),
                    Some(Tok::Str(s)) => Value::Str(s.clone()),
                    t => return err(format!("expected a value after the comparator, found {t:?}")),
                };
                i += 1;
                v
            };
            let numeric = matches!(f, Field::Metric(_) | Field::NumAttr(_));
            match (&value, numeric, op) {
                (Value::Num(_), true, Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge) => {}
                (Value::Str(_), false, Op::Eq | Op::Ne | Op::Like | Op::ILike) => {}
                (Value::List(_), false, Op::In | Op::NotIn) => {}
                (Value::Str(_), true, _) => {
                    return err(format!("{ident} compares numbers; the value must be a number"));
                }
                (Value::Num(_), false, _) => {
                    return err(format!(
                        "{ident} compares strings; quote the value (e.g. {ident} = '1')"
                    ));
                }
                _ => return err(format!("comparator not valid for {ident}")),
            }
            clauses.push(Clause { field: f, op, value });
        }
        Ok(Filter { clauses })
    }

    /// True when the run satisfies every clause.
    pub fn matches(&self, run: &Run) -> bool {
        self.clauses.iter().all(|c| c.matches(run))
    }
}

fn num_attr(run: &Run, key: &str) -> Option<f64> {
    match key {
        "start_time" => Some(run.info.start_time as f64),
        "end_time" => run.info.end_time.map(|v| v as f64),
        _ => None,
    }
}

fn str_attr<'a>(run: &'a Run, key: &str) -> Option<&'a str> {
    Some(match key {
        "run_id" => &run.info.run_id,
        "run_name" => &run.info.run_name,
        "status" => &run.info.status,
        "user_id" => &run.info.user_id,
        "artifact_uri" => &run.info.artifact_uri,
        "lifecycle_stage" => &run.info.lifecycle_stage,
        _ => return None,
    })
}

/// SQL `LIKE`: `%` any run, `_` one character.
pub fn like(text: &str, pattern: &str, case_insensitive: bool) -> bool {
    let (t, p): (Vec<char>, Vec<char>) = if case_insensitive {
        (text.to_lowercase().chars().collect(), pattern.to_lowercase().chars().collect())
    } else {
        (text.chars().collect(), pattern.chars().collect())
    };
    // Iterative matcher with backtracking to the last `%`.
    let (mut ti, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '%')
}

impl Clause {
    fn matches(&self, run: &Run) -> bool {
        match (&self.field, &self.value) {
            (Field::Metric(k), Value::Num(v)) => {
                run.metric(k).is_some_and(|x| cmp_num(x, self.op, *v))
            }
            (Field::NumAttr(k), Value::Num(v)) => {
                num_attr(run, k).is_some_and(|x| cmp_num(x, self.op, *v))
            }
            (Field::Param(k), v) => run.param(k).is_some_and(|x| cmp_str(x, self.op, v)),
            (Field::Tag(k), v) => run.tag(k).is_some_and(|x| cmp_str(x, self.op, v)),
            (Field::StrAttr(k), v) => str_attr(run, k).is_some_and(|x| cmp_str(x, self.op, v)),
            _ => false,
        }
    }
}

fn cmp_num(x: f64, op: Op, v: f64) -> bool {
    match op {
        Op::Eq => x == v,
        Op::Ne => x != v,
        Op::Lt => x < v,
        Op::Le => x <= v,
        Op::Gt => x > v,
        Op::Ge => x >= v,
        _ => false,
    }
}

fn cmp_str(x: &str, op: Op, v: &Value) -> bool {
    match (op, v) {
        (Op::Eq, Value::Str(s)) => x == s,
        (Op::Ne, Value::Str(s)) => x != s,
        (Op::Like, Value::Str(s)) => like(x, s, false),
        (Op::ILike, Value::Str(s)) => like(x, s, true),
        (Op::In, Value::List(l)) => l.iter().any(|s| s == x),
        (Op::NotIn, Value::List(l)) => l.iter().all(|s| s != x),
        _ => false,
    }
}

/// One `order_by` clause.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    /// What to sort by.
    pub field: Field,
    /// Ascending?
    pub asc: bool,
}

impl OrderBy {
    /// Parses `metrics.loss DESC`, `attributes.start_time`, ``tags.`a b` ASC``.
    pub fn parse(s: &str) -> Result<Self, FilterError> {
        let toks = lex(s)?;
        let (ident, rest) = match toks.split_first() {
            Some((Tok::Word(w) | Tok::Quoted(w), rest)) => (w.clone(), rest),
            _ => return err(format!("invalid order_by clause {s:?}")),
        };
        let asc = match rest {
            [] => true,
            [Tok::Word(d)] if d.eq_ignore_ascii_case("asc") => true,
            [Tok::Word(d)] if d.eq_ignore_ascii_case("desc") => false,
            _ => return err(format!("invalid order_by clause {s:?} (use `<key> [ASC|DESC]`)")),
        };
        Ok(OrderBy { field: field(&ident)?, asc })
    }

    /// Compares two runs by this clause; a run without the value sorts last either way.
    pub fn compare(&self, a: &Run, b: &Run) -> Ordering {
        fn opt<T: PartialOrd>(x: Option<T>, y: Option<T>, asc: bool) -> Ordering {
            match (x, y) {
                (Some(x), Some(y)) => {
                    let o = x.partial_cmp(&y).unwrap_or(Ordering::Equal);
                    if asc { o } else { o.reverse() }
                }
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
        }
        match &self.field {
            Field::Metric(k) => opt(a.metric(k), b.metric(k), self.asc),
            Field::NumAttr(k) => opt(num_attr(a, k), num_attr(b, k), self.asc),
            Field::Param(k) => opt(a.param(k), b.param(k), self.asc),
            Field::Tag(k) => opt(a.tag(k), b.tag(k), self.asc),
            Field::StrAttr(k) => opt(str_attr(a, k), str_attr(b, k), self.asc),
        }
    }
}

/// Sorts runs as MLflow does: by each clause in turn, then by start time (newest first), then
/// by run id.
pub fn sort_runs(runs: &mut [Run], order: &[OrderBy]) {
    runs.sort_by(|a, b| {
        order.iter().map(|o| o.compare(a, b)).find(|o| o.is_ne()).unwrap_or_else(|| {
            b.info.start_time.cmp(&a.info.start_time).then(a.info.run_id.cmp(&b.info.run_id))
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::{Metric, RunData, RunInfo, RunInputs, Tag};

    fn run(id: &str, loss: Option<f64>, alpha: &str, team: &str, start: i64) -> Run {
        Run {
            info: RunInfo {
                run_id: id.into(),
                run_uuid: id.into(),
                run_name: format!("name-{id}"),
                experiment_id: "1".into(),
                user_id: "me".into(),
                status: "FINISHED".into(),
                start_time: start,
                end_time: Some(start + 10),
                artifact_uri: String::new(),
                lifecycle_stage: "active".into(),
            },
            data: RunData {
                metrics: loss
                    .map(|v| Metric { key: "loss".into(), value: v, timestamp: 0, step: 0 })
                    .into_iter()
                    .collect(),
                params: vec![Tag { key: "alpha".into(), value: alpha.into() }],
                tags: vec![Tag { key: "mlflow.runName".into(), value: team.into() }],
            },
            inputs: RunInputs::default(),
        }
    }

    #[test]
    fn clauses_and_types() {
        let a = run("a", Some(0.1), "0.5", "x", 1);
        let b = run("b", Some(2.0), "0.9", "y", 2);
        let c = run("c", None, "0.5", "x", 3);
        let f = Filter::parse("params.alpha = '0.5' and metrics.loss < 0.5").unwrap();
        assert!(f.matches(&a) && !f.matches(&b) && !f.matches(&c), "missing metric never matches");
        let f = Filter::parse("tags.`mlflow.runName` IN ('y', 'z') AND attributes.start_time >= 2")
            .unwrap();
        assert!(!f.matches(&a) && f.matches(&b));
        assert!(Filter::parse("attributes.run_name = 'name-c'").unwrap().matches(&c));
        assert!(Filter::parse("run_name LIKE 'name-%'").unwrap().matches(&c));
        assert!(Filter::parse("params.alpha NOT IN ('0.5')").unwrap().matches(&b));
        assert!(Filter::parse("metrics.\"loss\" >= 2").unwrap().matches(&b));
        assert!(Filter::parse("tags.mlflow.runName ILIKE 'X'").unwrap().matches(&a));
        assert!(Filter::parse("").unwrap().matches(&c));
        assert!(Filter::parse("metrics.loss != -1e-3").unwrap().matches(&a));
    }

    #[test]
    fn errors_are_clear() {
        for (f, want) in [
            ("metrics.loss < 'a'", "must be a number"),
            ("params.alpha = 0.5", "quote the value"),
            ("foo.bar = 1", "invalid entity"),
            ("metrics.loss < 1 or metrics.loss > 2", "OR is not supported"),
            ("params.a = 'x", "unterminated"),
            ("metrics.loss", "comparator"),
            ("attributes.nope = 'x'", "invalid attribute"),
        ] {
            let e = Filter::parse(f).unwrap_err().0;
            assert!(e.contains(want), "{f}: {e}");
        }
    }

    #[test]
    fn like_patterns() {
        assert!(like("conf-run-1", "conf%", false));
        assert!(like("conf-run-1", "%run_1", false));
        assert!(!like("Conf", "conf", false));
        assert!(like("Conf", "conf", true));
        assert!(like("", "%", false));
        assert!(!like("abc", "a_", false));
    }

    #[test]
    fn ordering_puts_missing_last() {
        let mut v = vec![
            run("a", Some(0.1), "", "", 1),
            run("c", None, "", "", 3),
            run("b", Some(2.0), "", "", 2),
        ];
        sort_runs(&mut v, &[OrderBy::parse("metrics.loss DESC").unwrap()]);
        let ids: Vec<_> = v.iter().map(|r| r.info.run_id.as_str()).collect();
        assert_eq!(ids, ["b", "a", "c"]);
        sort_runs(&mut v, &[]);
        let ids: Vec<_> = v.iter().map(|r| r.info.run_id.as_str()).collect();
        assert_eq!(ids, ["c", "b", "a"], "default: newest first");
        assert!(OrderBy::parse("metrics.loss sideways").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,60}") {
            let _ = Filter::parse(&s);
            let _ = OrderBy::parse(&s);
        }
    }
}
