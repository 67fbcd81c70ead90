//! Silences: mute the notifications of incidents whose signals match, for a while (planned
//! maintenance, a known problem someone is on). As in Alertmanager, a silence is a set of
//! label matchers (`name=value`, `name!=value`, `name=~regex`, `name!~regex`; a missing label
//! reads as the empty string) and a time range. It never changes what is stored or how signals
//! are grouped: only whether people are told.
//!
//! An incident is silenced when **every** signal it lists matches some active silence, so a
//! new, unsilenced signal joining it is announced.

use std::fmt;

use auspex_core::Labels;
use auspex_core::time::{representable, rfc3339};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Incident;

/// Most matchers in one silence. A silence takes at most about 2 MiB (every matcher a regex
/// at its limits); a usual one, under 2 KiB.
pub const MAX_MATCHERS: usize = 16;
/// Longest comment, in bytes.
pub const MAX_COMMENT_BYTES: usize = 4096;
/// Longest `created_by`, in bytes.
pub const MAX_BY_BYTES: usize = 256;
/// Longest matcher, in bytes.
pub const MAX_MATCHER_BYTES: usize = 1024;
/// Compiled size limit of a matcher's regex (bounds the memory a user's pattern takes; a
/// 1 KiB alternation of names fits).
const REGEX_BYTES: usize = 64 * 1024;
/// Lazy-DFA cache limit of a matcher's regex (one or two caches: matching runs under a lock).
const REGEX_CACHE_BYTES: usize = 32 * 1024;

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`: equal.
    Eq,
    /// `!=`: not equal.
    Ne,
    /// `=~`: the whole value matches the regex.
    Re,
    /// `!~`: the whole value does not match the regex.
    NotRe,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Re => "=~",
            Self::NotRe => "!~",
        }
    }
}

/// One label matcher, written as in PromQL and amtool: `service="checkout"`,
/// `alertname=~"Disk.*"` (quotes optional).
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The label.
    pub name: String,
    /// The comparison.
    pub op: Op,
    /// The value or pattern.
    pub value: String,
    re: Option<regex::Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        (&self.name, self.op, &self.value) == (&o.name, o.op, &o.value)
    }
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

impl Matcher {
    /// Parses `name op value`; the value may be double-quoted (with `\"` and `\\` escapes).
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() > MAX_MATCHER_BYTES {
            return Err(format!("matcher longer than {MAX_MATCHER_BYTES} bytes"));
        }
        let s = s.trim();
        let at = s.find(['=', '!']).ok_or_else(|| {
            format!("matcher {s:?}: use name=value, name!=value, name=~regex or name!~regex")
        })?;
        let (name, rest) = (s[..at].trim(), &s[at..]);
        let (op, raw) = if let Some(v) = rest.strip_prefix("=~") {
            (Op::Re, v)
        } else if let Some(v) = rest.strip_prefix("!~") {
            (Op::NotRe, v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            (Op::Ne, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (Op::Eq, v)
        } else {
            return Err(format!(
                "matcher {s:?}: use name=value, name!=value, name=~regex or name!~regex"
            ));
        };
        if !valid_name(name) {
            return Err(format!("matcher {s:?}: {name:?} is not a label name"));
        }
        let value = unquote(raw.trim()).map_err(|why| format!("matcher {s:?}: {why}"))?;
        let re = match op {
            Op::Re | Op::NotRe => Some(
                regex::RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(REGEX_BYTES)
                    .dfa_size_limit(REGEX_CACHE_BYTES)
                    .build()
                    .map_err(|e| format!("matcher {s:?}: bad regex: {e}"))?,
            ),
            _ => None,
        };
        Ok(Self { name: name.to_string(), op, value, re })
    }

    /// Whether a label value (`""` for a missing label) passes.
    fn passes(&self, v: &str) -> bool {
        match (self.op, &self.re) {
            (Op::Eq, _) => v == self.value,
            (Op::Ne, _) => v != self.value,
            (Op::Re, Some(re)) => re.is_match(v),
            (Op::NotRe, Some(re)) => !re.is_match(v),
            _ => false,
        }
    }

    /// Whether `labels` pass this matcher.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.passes(labels.get(&self.name).unwrap_or(""))
    }
}

fn unquote(v: &str) -> Result<String, String> {
    let Some(inner) = v.strip_prefix('"') else {
        if v.starts_with(['=', '~']) {
            return Err("a value starting with = or ~ must be quoted".into());
        }
        return Ok(v.to_string());
    };
    let inner = inner.strip_suffix('"').ok_or("unterminated quote")?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('"' | '\\')) => out.push(e),
                Some('n') => out.push('\n'),
                _ => return Err("bad escape (use \\\" or \\\\)".into()),
            },
            '"' => return Err("a quote inside the value must be escaped".into()),
            c => out.push(c),
        }
    }
    Ok(out)
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        write!(f, "{}{}\"{v}\"", self.name, self.op.as_str())
    }
}

impl Serialize for Matcher {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Where a silence is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Starts later.
    Pending,
    /// Mutes now.
    Active,
    /// Over.
    Expired,
}

impl State {
    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Expired => "expired",
        }
    }
}

/// A silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// Its id (16 hex digits).
    pub id: String,
    /// All must match a signal's labels.
    pub matchers: Vec<Matcher>,
    /// From when it mutes.
    #[serde(with = "rfc3339")]
    pub starts: i64,
    /// Until when (exclusive).
    #[serde(with = "rfc3339")]
    pub ends: i64,
    /// When it was made (or last expired by hand).
    #[serde(with = "rfc3339")]
    pub updated: i64,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

impl Silence {
    /// A silence from user input, checked: at least one matcher, at most [`MAX_MATCHERS`], not
    /// all matching the empty string (that would mute everything), `starts < ends` with `ends`
    /// after `now`, and a comment (at most [`MAX_COMMENT_BYTES`]; `created_by` at most
    /// [`MAX_BY_BYTES`]).
    pub fn new(
        id: String,
        matchers: Vec<Matcher>,
        (starts, ends): (i64, i64),
        now: i64,
        created_by: String,
        comment: String,
    ) -> Result<Self, String> {
        if matchers.is_empty() {
            return Err("a silence needs at least one matcher".into());
        }
        if matchers.len() > MAX_MATCHERS {
            return Err(format!("at most {MAX_MATCHERS} matchers"));
        }
        if matchers.iter().all(|m| m.passes("")) {
            return Err("every matcher matches the empty label, so the silence would mute every \
                        incident: add one that needs a value (e.g. service=\"checkout\")"
                .into());
        }
        if !(representable(starts) && representable(ends)) {
            return Err("the silence must start and end within years 0000 to 9999".into());
        }
        if ends <= starts {
            return Err("the silence must end after it starts".into());
        }
        if ends <= now {
            return Err("the silence would end in the past".into());
        }
        if comment.trim().is_empty() {
            return Err("say why in the comment".into());
        }
        if comment.len() > MAX_COMMENT_BYTES {
            return Err(format!("the comment is longer than {MAX_COMMENT_BYTES} bytes"));
        }
        if created_by.len() > MAX_BY_BYTES {
            return Err(format!("\"by\" is longer than {MAX_BY_BYTES} bytes"));
        }
        Ok(Self { id, matchers, starts, ends, updated: now, created_by, comment })
    }

    /// Where it is at `now`.
    pub fn state(&self, now: i64) -> State {
        if now >= self.ends {
            State::Expired
        } else if now < self.starts {
            State::Pending
        } else {
            State::Active
        }
    }

    /// Whether every matcher passes `labels`.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }

    /// Ends it at `now` (a pending one never starts).
    pub fn expire(&mut self, now: i64) {
        self.ends = self.ends.min(now);
        self.starts = self.starts.min(self.ends);
        self.updated = now;
    }
}

/// The ids of the active silences that together cover every signal `inc` lists (each signal
/// matched by at least one), or `None` if some signal is matched by none (or it lists none).
/// Signals beyond those listed (`max_members`) are known only by their services: if one of
/// the incident's services is carried by no listed signal, an unlisted signal may match no
/// silence, so the incident is not covered (when unsure, notify).
pub fn covering(silences: &[Silence], inc: &Incident, now: i64) -> Option<Vec<String>> {
    let active: Vec<&Silence> = silences.iter().filter(|s| s.state(now) == State::Active).collect();
    if active.is_empty() || inc.signals.is_empty() {
        return None;
    }
    if inc.signal_count > inc.signals.len() as u64 {
        let values: std::collections::HashSet<&str> =
            inc.signals.iter().flat_map(|m| m.labels.iter().map(|(_, v)| v)).collect();
        if inc.services.iter().any(|s| !values.contains(s.as_str())) {
            return None;
        }
    }
    // The silences found so far are tried first: signals of one incident are usually alike,
    // so one silence covering them all costs one pass over the silences, not one per signal.
    let mut found: Vec<&Silence> = Vec::new();
    for m in &inc.signals {
        if found.iter().any(|s| s.matches(&m.labels)) {
            continue;
        }
        found.push(active.iter().find(|s| s.matches(&m.labels))?);
    }
    Some(found.iter().map(|s| s.id.clone()).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn matchers_parse_print_and_match() {
        let l = labels(&[("alertname", "DiskFull"), ("service", "db"), ("env", "prod")]);
        for (m, want) in [
            ("service=db", true),
            ("service=\"db\"", true),
            (" service = db ", true),
            ("service!=db", false),
            ("alertname=~Disk.*", true),
            ("alertname=~\"Disk\"", false), // anchored: the whole value
            ("alertname!~\"CPU.*|Mem.*\"", true),
            ("team=", true), // missing label reads as ""
            ("team!=\"\"", false),
            ("env=~\"prod|staging\"", true),
        ] {
            let p = Matcher::parse(m).unwrap();
            assert_eq!(p.matches(&l), want, "{m}");
            let again = Matcher::parse(&p.to_string()).unwrap();
            assert_eq!(again, p, "round trip of {m} via {p}");
        }
        let q = Matcher::parse(r#"msg="say \"hi\" \\ bye""#).unwrap();
        assert_eq!(q.value, r#"say "hi" \ bye"#);
        assert_eq!(Matcher::parse(&q.to_string()).unwrap(), q);
        for bad in [
            "service",
            "=db",
            "1x=db",
            "serv ice=db",
            "service==db",
            "service=\"db",
            "service=\"d\"b\"",
            "service=~\"(\"",
            "service=\"a\\qb\"",
        ] {
            assert!(Matcher::parse(bad).is_err(), "{bad} should be refused");
        }
        // A long alternation of service names (near the byte limit) fits the regex limits.
        let names: Vec<String> = (0..55).map(|i| format!("service-{i:03}-prod")).collect();
        let wide = Matcher::parse(&format!("service=~\"{}\"", names.join("|"))).unwrap();
        assert!(wide.matches(&labels(&[("service", "service-042-prod")])));
        let huge = format!("x=~{}", "a{1000}{1000}");
        assert!(Matcher::parse(&huge).unwrap_err().contains("regex"), "size limit");
    }

    #[test]
    fn a_silence_must_say_what_when_and_why() {
        let m = |s: &str| Matcher::parse(s).unwrap();
        let new = |ms: Vec<Matcher>, range, comment: &str| {
            Silence::new("1".into(), ms, range, 100, "ana".into(), comment.into())
        };
        assert!(new(vec![m("service=db")], (0, 200), "maintenance").is_ok());
        assert!(new(vec![], (0, 200), "x").unwrap_err().contains("at least one"));
        assert!(new(vec![m("team=~.*")], (0, 200), "x").unwrap_err().contains("every incident"));
        assert!(new(vec![m("service=db")], (200, 200), "x").unwrap_err().contains("after"));
        assert!(new(vec![m("service=db")], (0, 100), "x").unwrap_err().contains("past"));
        let far = auspex_core::time::LATEST_MS + 1;
        assert!(new(vec![m("service=db")], (0, far), "x").unwrap_err().contains("9999"));
        assert!(new(vec![m("service=db")], (0, 200), " ").unwrap_err().contains("comment"));
        let long = "x".repeat(MAX_COMMENT_BYTES + 1);
        assert!(new(vec![m("service=db")], (0, 200), &long).unwrap_err().contains("longer"));
        let many = (0..=MAX_MATCHERS).map(|i| m(&format!("l{i}=v"))).collect();
        assert!(new(many, (0, 200), "x").unwrap_err().contains("at most"));
        let mut s = new(vec![m("service=db")], (150, 300), "later").unwrap();
        assert_eq!(s.state(100), State::Pending);
        assert_eq!(s.state(150), State::Active);
        assert_eq!(s.state(300), State::Expired);
        s.expire(120);
        assert_eq!((s.starts, s.ends, s.state(120)), (120, 120, State::Expired));
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains(r#""matchers":["service=\"db\""]"#), "{json}");
        assert_eq!(serde_json::from_str::<Silence>(&json).unwrap(), s);
    }

    #[test]
    fn an_incident_is_silenced_only_when_every_signal_is() {
        use crate::{Config, Correlator, Topology};
        use auspex_core::{Explanation, Signal, SignalKind};
        let sig = |service: &str, t: i64| {
            let l = labels(&[("alertname", "Down"), ("service", service)]);
            Signal::new(SignalKind::Alert, l, t, 0.9, Explanation::Text { message: String::new() })
        };
        let mut c = Correlator::new(Config::default(), Topology::default());
        let id = c.observe(&sig("db", 1_000))[0].id();
        let m = |s: &str| Matcher::parse(s).unwrap();
        let db =
            Silence::new("a".into(), vec![m("service=db")], (0, 10_000), 0, "x".into(), "y".into())
                .unwrap();
        let api = Silence::new(
            "b".into(),
            vec![m("service=api")],
            (0, 10_000),
            0,
            "x".into(),
            "y".into(),
        )
        .unwrap();
        let both = [db.clone(), api.clone()];
        assert_eq!(covering(&both, c.get(id).unwrap(), 5_000), Some(vec!["a".to_string()]));
        assert_eq!(covering(&both, c.get(id).unwrap(), 10_000), None, "expired");
        assert_eq!(covering(std::slice::from_ref(&api), c.get(id).unwrap(), 5_000), None);
        c.observe(&sig("api", 1_100)); // co-onset: joins
        assert_eq!(c.get(id).unwrap().signals.len(), 2);
        assert_eq!(
            covering(std::slice::from_ref(&db), c.get(id).unwrap(), 5_000),
            None,
            "api is not silenced"
        );
        let ids = covering(&both, c.get(id).unwrap(), 5_000).unwrap();
        assert_eq!(ids, vec!["a".to_string(), "b".to_string()]);

        // One member listed: a second service joins unlisted; a silence of db alone does not
        // cover it (it is not known to match), a repeat of db alone does not change that.
        let cfg = Config { max_members: 1, ..Config::default() };
        let mut c = Correlator::new(cfg, Topology::default());
        let id = c.observe(&sig("db", 1_000))[0].id();
        assert_eq!(
            covering(std::slice::from_ref(&db), c.get(id).unwrap(), 5_000).unwrap().len(),
            1
        );
        c.observe(&sig("api", 1_100));
        let inc = c.get(id).unwrap();
        assert_eq!((inc.signals.len(), inc.signal_count), (1, 2), "api counted, not listed");
        assert_eq!(covering(std::slice::from_ref(&db), inc, 5_000), None);
    }
}

/// A benchmark, not run by default: what the silence check of one notification costs (it runs
/// under the correlator's lock), for an incident of M listed signals and S active silences of
/// which only the last matches them (the worst case: every signal against every silence):
/// `M=500 S=1000 cargo test --release -p auspex-incidents --lib covering_cost -- --ignored --nocapture`.
#[cfg(test)]
mod covering_cost {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    #[ignore]
    fn covering_cost() {
        use crate::{Config, Correlator, Topology};
        use auspex_core::{Explanation, Signal, SignalKind};
        let env =
            |k: &str, d: usize| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
        let (m, n) = (env("M", 500), env("S", 1000));
        let mut c =
            Correlator::new(Config { max_members: m, ..Config::default() }, Topology::default());
        let mut id = None;
        for i in 0..m {
            let svc = format!("svc-{}", i % 20);
            let name = format!("Alert{i}");
            let l = Labels::from_pairs([("alertname", name.as_str()), ("service", svc.as_str())])
                .unwrap();
            let s = Signal::new(
                SignalKind::Alert,
                l,
                1_000,
                0.9,
                Explanation::Text { message: String::new() },
            );
            id = id.or(c.observe(&s).first().map(|ch| ch.id()));
        }
        let inc = c.get(id.unwrap()).unwrap();
        assert_eq!(inc.signals.len(), m, "one incident of M signals");
        let silences: Vec<Silence> = (0..n)
            .map(|k| {
                let svc = if k + 1 == n { "svc-.*".to_string() } else { format!("other-{k}|x.*") };
                let ms = vec![
                    Matcher::parse(&format!("service=~\"{svc}\"")).unwrap(),
                    Matcher::parse("alertname!=Nothing").unwrap(),
                ];
                Silence::new(k.to_string(), ms, (0, 10_000), 0, "a".into(), "b".into()).unwrap()
            })
            .collect();
        let mut runs: Vec<std::time::Duration> = (0..5)
            .map(|_| {
                let t0 = std::time::Instant::now();
                let ids = covering(&silences, inc, 5_000).unwrap();
                assert_eq!(ids, vec![(n - 1).to_string()]);
                t0.elapsed()
            })
            .collect();
        runs.sort();
        println!("members={m} silences={n} median={:?} runs={runs:?}", runs[2]);
    }
}
