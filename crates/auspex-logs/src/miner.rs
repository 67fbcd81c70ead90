//! An online, deterministic template miner of the Drain family.
//!
//! 1. **Mask.** Generic rules turn URLs, UUIDs, IPv4 addresses (with port), MACs, hex numbers
//!    and paths into variables; users can add their own rules.
//! 2. **Tokenise.** Whitespace separates tokens, and the punctuation `= , : ; ( ) [ ] { } " '`
//!    is split off as tokens of its own (remembering where spaces were), so `uid=10037,` is
//!    `uid`, `=`, `10037`, `,`. A word containing a digit is a variable, and so are `true`,
//!    `false` and `null`. A full stop that ends a word of letters is punctuation. Values glued
//!    by commas (`a1,b2`), or separated only by spaces, are one variable.
//! 3. **Cluster.** Messages are bucketed by token count and first constant token; within a
//!    bucket a message joins the most similar template if at least `sim_threshold` of the
//!    template's constant tokens match, and differing positions become `<*>`.
//!
//! The number of templates is bounded (`max_templates`, least recently used evicted), and the
//! state round-trips through [`Miner::snapshot`] / [`Miner::restore`].

use std::collections::HashMap;

use auspex_core::text::truncate;
use regex::Regex;
use serde::{Deserialize, Serialize};

/// Miner settings. One configuration serves every log source.
#[derive(Debug, Clone)]
pub struct MinerConfig {
    /// Share of a template's constant tokens a message must match to join it.
    pub sim_threshold: f64,
    /// Most templates kept (least recently used evicted).
    pub max_templates: usize,
    /// The variable placeholder in templates.
    pub placeholder: String,
    /// Extra masking rules, applied before the built-in ones.
    pub extra_masks: Vec<Regex>,
    /// Messages longer than this (bytes) are truncated before mining.
    pub max_message_bytes: usize,
}

impl Default for MinerConfig {
    fn default() -> Self {
        Self {
            sim_threshold: 0.5,
            max_templates: 10_000,
            placeholder: "<*>".to_string(),
            extra_masks: Vec::new(),
            max_message_bytes: 16 * 1024,
        }
    }
}

/// The built-in masking rules, most specific first.
pub const BUILTIN_MASKS: [&str; 7] = [
    r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s<>]+",
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
    r"/?\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b",
    r"\b[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}\b",
    r"\b0[xX][0-9a-fA-F]+\b",
    r"(?:/[^\s/\x22'()\[\]{},;]+){2,}/?",
    r"\b\d+(?:\.\d+)?(?:ms|us|ns|s|KB|MB|GB|kB|KiB|MiB|GiB|B)\b",
];

/// One token of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tok<'a> {
    text: &'a str,
    var: bool,
    space_before: bool,
}

impl Tok<'_> {
    fn start(&self, msg: &str) -> usize {
        self.text.as_ptr() as usize - msg.as_ptr() as usize
    }
    fn end(&self, msg: &str) -> usize {
        self.start(msg) + self.text.len()
    }
}

fn is_delim(t: &str) -> bool {
    t.len() == 1 && DELIM[usize::from(t.as_bytes()[0])]
}

/// Byte classes for the tokenizer: punctuation tokens, and the ASCII characters for which
/// `char::is_whitespace` holds (non-ASCII characters are decoded and asked).
const DELIM: [bool; 256] = byte_table(b"=,:;()[]{}\"'");
const SPACE: [bool; 256] = byte_table(b"\t\n\x0b\x0c\r ");

const fn byte_table(set: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < set.len() {
        t[set[i] as usize] = true;
        i += 1;
    }
    t
}

/// The character at `i` (a char boundary) when it is whitespace: its length.
fn space_at(msg: &str, i: usize) -> Option<usize> {
    let b = msg.as_bytes()[i];
    if b < 0x80 {
        return SPACE[usize::from(b)].then_some(1);
    }
    let c = msg[i..].chars().next()?;
    c.is_whitespace().then(|| c.len_utf8())
}

/// Splits a message into tokens (see the module docs). `spans` is scratch space.
fn tokenize<'a>(
    extra: &[Regex],
    builtin: Option<&Regex>,
    spans: &mut Vec<(usize, usize)>,
    msg: &'a str,
) -> Vec<Tok<'a>> {
    // Mask spans (non-overlapping, leftmost first; user rules before the built-in ones).
    spans.clear();
    let add = |spans: &mut Vec<(usize, usize)>, s: usize, e: usize| {
        if s < e && !spans.iter().any(|&(a, b)| s < b && a < e) {
            spans.push((s, e));
        }
    };
    for re in extra {
        for m in re.find_iter(msg) {
            add(spans, m.start(), m.end());
        }
    }
    for m in builtin.into_iter().flat_map(|re| re.find_iter(msg)) {
        add(spans, m.start(), m.end());
    }
    if !extra.is_empty() {
        spans.sort_unstable();
    }
    let bytes = msg.as_bytes();
    let mut toks: Vec<Tok<'a>> = Vec::with_capacity(16);
    let mut i = 0;
    let mut space = false;
    let mut si = 0;
    while i < msg.len() {
        if si < spans.len() && spans[si].0 == i {
            let (s, e) = spans[si];
            toks.push(Tok { text: &msg[s..e], var: true, space_before: space });
            space = false;
            i = e;
            si += 1;
            continue;
        }
        if let Some(n) = space_at(msg, i) {
            space = true;
            i += n;
            continue;
        }
        if DELIM[usize::from(bytes[i])] {
            toks.push(Tok { text: &msg[i..i + 1], var: false, space_before: space });
            space = false;
            i += 1;
            continue;
        }
        let start = i;
        let stop = if si < spans.len() { spans[si].0 } else { msg.len() };
        let mut digit = false;
        while i < stop {
            let b = bytes[i];
            if b < 0x80 {
                if SPACE[usize::from(b)] || DELIM[usize::from(b)] {
                    break;
                }
                digit |= b.is_ascii_digit();
                i += 1;
            } else {
                let c = msg[i..].chars().next().unwrap_or(' ');
                if c.is_whitespace() {
                    break;
                }
                i += c.len_utf8();
            }
        }
        let text = &msg[start..i];
        // A word glued to a masked span (no space, no punctuation between) is part of the
        // same variable: `KB123~6.2.1.2` is one value, not two.
        if let Some(prev) = toks.last_mut()
            && !space
            && prev.var
            && !is_delim(prev.text)
            && prev.end(msg) == start
        {
            prev.text = &msg[prev.start(msg)..i];
            continue;
        }
        // A full stop that ends a word of letters ends a sentence: it is punctuation, not
        // part of the word (`initialization.` is the word `initialization`).
        let sentence_end = text.len() > 2
            && text.ends_with('.')
            && !digit
            && text[..text.len() - 1].bytes().all(|c| c.is_ascii_alphabetic())
            && (i == msg.len() || space_at(msg, i).is_some());
        if sentence_end {
            toks.push(Tok { text: &text[..text.len() - 1], var: false, space_before: space });
            toks.push(Tok { text: &msg[i - 1..i], var: false, space_before: false });
        } else {
            // Booleans and null are values, like numbers.
            let literal = matches!(
                text,
                "true" | "false" | "True" | "False" | "TRUE" | "FALSE" | "null" | "NULL" | "None"
            );
            toks.push(Tok { text, var: digit || literal, space_before: space });
        }
        space = false;
    }
    // And a masked span glued to a preceding word (in place).
    let mut w = 0;
    for r in 0..toks.len() {
        let t = toks[r];
        if w > 0 {
            let prev = &mut toks[w - 1];
            if !t.space_before
                && (t.var || prev.var)
                && !is_delim(t.text)
                && !is_delim(prev.text)
                && prev.end(msg) == t.start(msg)
            {
                prev.text = &msg[prev.start(msg)..t.end(msg)];
                prev.var = true;
                continue;
            }
        }
        toks[w] = t;
        w += 1;
    }
    toks.truncate(w);
    // Values joined by commas without spaces are one value, a list (`10.0.0.2,10.0.0.1`).
    let mut w = 0;
    let mut r = 0;
    while r < toks.len() {
        let t = toks[r];
        if w > 0
            && t.text == ","
            && !t.space_before
            && toks[w - 1].var
            && toks.get(r + 1).is_some_and(|n| n.var && !n.space_before)
        {
            let end = toks[r + 1].end(msg);
            let prev = &mut toks[w - 1];
            prev.text = &msg[prev.start(msg)..end];
            r += 2;
            continue;
        }
        toks[w] = t;
        w += 1;
        r += 1;
    }
    toks.truncate(w);
    // Runs of variables separated by spaces are one variable: lists of values vary in
    // length (`an14 an15 an16 ...`).
    let mut w = 0;
    for r in 0..toks.len() {
        let t = toks[r];
        if w > 0 && t.var && toks[w - 1].var {
            let prev = &mut toks[w - 1];
            prev.text = &msg[prev.start(msg)..t.end(msg)];
            continue;
        }
        toks[w] = t;
        w += 1;
    }
    toks.truncate(w);
    toks
}

/// A template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    /// Stable id within this miner (`E1`, `E2`, ... when printed).
    pub id: u32,
    /// Tokens; `None` is a variable.
    pub tokens: Vec<Option<String>>,
    /// Whether a space precedes each token.
    pub spaces: Vec<bool>,
    /// Messages matched.
    pub count: u64,
    /// The first message that created it (truncated).
    pub example: String,
    /// Logical time of the last match (for LRU).
    pub last_used: u64,
}

impl Template {
    /// The template text with `placeholder` for variables.
    pub fn text(&self, placeholder: &str) -> String {
        let mut s = String::new();
        for (i, t) in self.tokens.iter().enumerate() {
            if i > 0 && self.spaces[i] {
                s.push(' ');
            }
            s.push_str(t.as_deref().unwrap_or(placeholder));
        }
        s
    }

    fn constants(&self) -> usize {
        self.tokens.iter().filter(|t| t.is_some()).count()
    }
}

/// What mining one message gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// The template id.
    pub id: u32,
    /// The template text after this message was added.
    pub template: String,
    /// The message's values at the template's variable positions.
    pub params: Vec<String>,
    /// True when this message created the template.
    pub new: bool,
}

/// Serialised miner state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MinerState {
    /// Format version.
    pub v: u32,
    /// Templates.
    pub templates: Vec<Template>,
    /// Next id.
    pub next_id: u32,
    /// Logical clock.
    pub tick: u64,
}

/// The miner.
#[derive(Debug, Clone)]
pub struct Miner {
    cfg: MinerConfig,
    /// The user's rules.
    masks: Vec<Regex>,
    /// The built-in rules, as one alternation.
    builtin: Option<Regex>,
    /// Scratch space for mask spans.
    spans: Vec<(usize, usize)>,
    templates: HashMap<u32, Template>,
    buckets: HashMap<(usize, u64), Vec<u32>>,
    next_id: u32,
    tick: u64,
}

/// A snapshot that could not be restored.
#[derive(Debug, thiserror::Error)]
#[error("bad miner snapshot: {0}")]
pub struct RestoreError(String);

impl Miner {
    /// A fresh miner.
    pub fn new(cfg: MinerConfig) -> Self {
        // The built-in rules as one alternation: one pass over the message.
        static BUILTIN: std::sync::LazyLock<Option<Regex>> = std::sync::LazyLock::new(|| {
            // ASCII word boundaries and classes: Unicode `\b` forces the regex engine off its
            // fast path, and the values masked here are ASCII anyway.
            let alt: Vec<String> = BUILTIN_MASKS
                .iter()
                .map(|m| {
                    let m = m
                        .replace(r"\b", r"(?-u:\b)")
                        .replace(r"\d", "[0-9]")
                        .replace(r"\w", "[0-9A-Za-z_]");
                    format!("(?:{m})")
                })
                .collect();
            Regex::new(&alt.join("|")).ok()
        });
        let masks = cfg.extra_masks.clone();
        let builtin = BUILTIN.clone();
        Self {
            cfg,
            masks,
            builtin,
            spans: Vec::new(),
            templates: HashMap::new(),
            buckets: HashMap::new(),
            next_id: 1,
            tick: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &MinerConfig {
        &self.cfg
    }

    /// Templates, by id.
    pub fn templates(&self) -> Vec<&Template> {
        let mut v: Vec<&Template> = self.templates.values().collect();
        v.sort_by_key(|t| t.id);
        v
    }

    /// A template by id.
    pub fn template(&self, id: u32) -> Option<&Template> {
        self.templates.get(&id)
    }

    fn tokenize<'a>(&mut self, msg: &'a str) -> Vec<Tok<'a>> {
        tokenize(&self.masks, self.builtin.as_ref(), &mut self.spans, msg)
    }

    /// Mines one message: finds or creates its template, and renders it with the message's
    /// parameters.
    pub fn add(&mut self, message: &str) -> Match {
        let msg = truncate(message, self.cfg.max_message_bytes);
        let (id, new, toks) = self.mine(msg);
        let t = &self.templates[&id];
        let params = t
            .tokens
            .iter()
            .zip(&toks)
            .filter(|(slot, _)| slot.is_none())
            .map(|(_, tok)| tok.text.to_string())
            .collect();
        Match { id, template: t.text(&self.cfg.placeholder), params, new }
    }

    /// Mines one message and returns only its template id and whether it is new (the fast
    /// path: no rendering, no parameter copies).
    pub fn add_id(&mut self, message: &str) -> (u32, bool) {
        let msg = truncate(message, self.cfg.max_message_bytes);
        let (id, new, _) = self.mine(msg);
        (id, new)
    }

    /// Clusters a (truncated) message; returns its template id, whether it is new, and its
    /// tokens (for parameter extraction).
    fn mine<'a>(&mut self, msg: &'a str) -> (u32, bool, Vec<Tok<'a>>) {
        self.tick += 1;
        let toks = self.tokenize(msg);
        let first = toks.iter().find(|t| !t.var).map_or("", |t| t.text);
        let key = (toks.len(), if toks.first().is_some_and(|t| t.var) { 0 } else { fnv(first) });
        // Best template in the bucket.
        let mut best: Option<(u32, f64, usize)> = None;
        if let Some(ids) = self.buckets.get(&key) {
            for &id in ids {
                let Some(t) = self.templates.get(&id) else { continue };
                let (sim, consts) = similarity(t, &toks);
                let better = match best {
                    None => true,
                    Some((_, s, c)) => sim > s || (sim == s && consts > c),
                };
                if better {
                    best = Some((id, sim, consts));
                }
            }
        }
        let (id, new) = match best {
            Some((id, sim, _))
                if sim >= self.cfg.sim_threshold
                    && (sim >= WORD_SIM
                        || self.templates.get(&id).is_none_or(|t| !word_mismatch(t, &toks))) =>
            {
                if let Some(t) = self.templates.get_mut(&id) {
                    for (slot, tok) in t.tokens.iter_mut().zip(&toks) {
                        if slot.as_deref().is_some_and(|s| tok.var || s != tok.text) {
                            *slot = None;
                        }
                    }
                    t.count += 1;
                    t.last_used = self.tick;
                }
                (id, false)
            }
            _ => {
                let id = self.next_id;
                self.next_id = self.next_id.wrapping_add(1).max(1);
                let t = Template {
                    id,
                    tokens: toks.iter().map(|t| (!t.var).then(|| t.text.to_string())).collect(),
                    spaces: toks.iter().map(|t| t.space_before).collect(),
                    count: 1,
                    example: truncate(msg, 512).to_string(),
                    last_used: self.tick,
                };
                self.templates.insert(id, t);
                self.buckets.entry(key).or_default().push(id);
                self.evict();
                (id, true)
            }
        };
        (id, new, toks)
    }

    fn evict(&mut self) {
        while self.templates.len() > self.cfg.max_templates {
            let Some(&victim) =
                self.templates.values().min_by_key(|t| (t.last_used, t.id)).map(|t| &t.id)
            else {
                return;
            };
            self.templates.remove(&victim);
            for ids in self.buckets.values_mut() {
                ids.retain(|&i| i != victim);
            }
        }
    }

    /// The state as a serialisable value.
    pub fn snapshot(&self) -> MinerState {
        MinerState {
            v: 1,
            templates: self.templates().into_iter().cloned().collect(),
            next_id: self.next_id,
            tick: self.tick,
        }
    }

    /// Rebuilds a miner from a snapshot with configuration `cfg`.
    pub fn restore(cfg: MinerConfig, state: MinerState) -> Result<Self, RestoreError> {
        if state.v != 1 {
            return Err(RestoreError(format!("unsupported version {}", state.v)));
        }
        let mut m = Miner::new(cfg);
        m.next_id = state.next_id;
        m.tick = state.tick;
        for t in state.templates {
            if t.tokens.len() != t.spaces.len() {
                return Err(RestoreError(format!("template {} is inconsistent", t.id)));
            }
            let first = t.tokens.iter().flatten().next().cloned().unwrap_or_default();
            let key = (
                t.tokens.len(),
                if t.tokens.first().is_some_and(Option::is_none) { 0 } else { fnv(&first) },
            );
            m.buckets.entry(key).or_default().push(t.id);
            m.templates.insert(t.id, t);
        }
        for ids in m.buckets.values_mut() {
            ids.sort_unstable();
        }
        Ok(m)
    }
}

const WORD_SIM: f64 = 0.95;

/// True when a constant word of the template (letters only) meets a different word: two
/// verbs or nouns differ, which is a different event more often than a variable.
fn word_mismatch(t: &Template, toks: &[Tok<'_>]) -> bool {
    let word = |s: &str| s.len() >= 2 && s.bytes().all(|c| c.is_ascii_alphabetic());
    // Words that introduce a value in English log messages: the word after them is a variable
    // more often than not (`for root`, `user admin`, `to host`).
    const INTRO: [&str; 12] =
        ["for", "from", "to", "user", "by", "of", "with", "as", "named", "is", "at", "on"];
    t.tokens.iter().zip(toks).enumerate().any(|(i, (slot, tok))| {
        let differs =
            slot.as_deref().is_some_and(|s| !tok.var && s != tok.text && word(s) && word(tok.text));
        let introduced = i > 0
            && t.tokens[i - 1]
                .as_deref()
                .is_some_and(|p| INTRO.contains(&p.to_ascii_lowercase().as_str()));
        differs && !introduced
    })
}

/// Similarity of a message to a template: matching constant tokens over constant tokens
/// (a template of variables only matches anything of its length).
fn similarity(t: &Template, toks: &[Tok<'_>]) -> (f64, usize) {
    let consts = t.constants();
    if consts == 0 {
        return (1.0, 0);
    }
    let same = t
        .tokens
        .iter()
        .zip(toks)
        .filter(|(slot, tok)| slot.as_deref().is_some_and(|s| !tok.var && s == tok.text))
        .count();
    (same as f64 / consts as f64, consts)
}

/// FNV-1a, for bucket keys (0 is reserved for "starts with a variable").
fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mine(lines: &[&str]) -> (Miner, Vec<Match>) {
        let mut m = Miner::new(MinerConfig::default());
        let v = lines.iter().map(|l| m.add(l)).collect();
        (m, v)
    }

    #[test]
    fn known_lines_get_known_templates() {
        let (_, v) = mine(&[
            "PacketResponder 1 for block blk_38865049064139660 terminating",
            "PacketResponder 2 for block blk_-6952295868487656571 terminating",
            "Received block blk_3587508140051953248 of size 67108864 from /10.251.42.84",
            "Received block blk_5402003568334525940 of size 67108864 from /10.251.214.112",
        ]);
        assert_eq!(v[1].template, "PacketResponder <*> for block <*> terminating");
        assert_eq!(v[1].params, vec!["2", "blk_-6952295868487656571"]);
        assert_eq!(v[0].id, v[1].id);
        assert_eq!(v[3].template, "Received block <*> of size <*> from <*>");
        assert_ne!(v[2].id, v[0].id);
    }

    #[test]
    fn masks_and_punctuation() {
        let (_, v) = mine(&[
            "acquire lock=233570404, flags=0x1, tag=\"View Lock\", name=com.android.systemui, uid=10037",
            "connect to http://example.com/a?b=1 from 10.0.0.1:8080 id 0b85eee0-1234-5678-9abc-def012345678",
        ]);
        assert_eq!(
            v[0].template,
            "acquire lock=<*>, flags=<*>, tag=\"View Lock\", name=com.android.systemui, uid=<*>"
        );
        assert_eq!(v[1].template, "connect to <*> from <*> id <*>");
        assert_eq!(
            v[1].params,
            vec![
                "http://example.com/a?b=1",
                "10.0.0.1:8080",
                "0b85eee0-1234-5678-9abc-def012345678"
            ]
        );
    }

    #[test]
    fn lists_sentence_ends_and_booleans() {
        let (_, v) = mine(&[
            // A comma-joined list is one value, so one and two addresses share a template.
            "10.0.0.1 \"GET /v2/servers HTTP/1.1\" status: 200",
            "10.0.0.2,10.0.0.1 \"GET /v2/servers HTTP/1.1\" status: 200",
            // A sentence's full stop is punctuation: the words before it are compared as words.
            "Starting installer initialization.",
            "Starting installer finalization.",
            // Booleans are values.
            "overlap:false",
            "overlap:true",
        ]);
        assert_eq!(v[1].id, v[0].id);
        assert_eq!(v[1].params[0], "10.0.0.2,10.0.0.1");
        assert_ne!(v[3].id, v[2].id, "initialization and finalization are different events");
        assert_eq!(v[2].template, "Starting installer initialization.");
        assert_eq!(v[5].id, v[4].id);
        assert_eq!(v[5].template, "overlap:<*>");
        // A full stop inside a word or after a number is not a sentence end.
        let (_, v) = mine(&["loaded wcp.dll version 6.1", "took 5 s."]);
        assert_eq!(v[0].template, "loaded wcp.dll version <*>");
        assert_eq!(v[1].template, "took <*> s.");
    }

    #[test]
    fn user_masks_and_placeholder() {
        let cfg = MinerConfig {
            extra_masks: vec![Regex::new(r"user-[a-z]+").unwrap()],
            placeholder: "{var}".into(),
            ..MinerConfig::default()
        };
        let mut m = Miner::new(cfg);
        assert_eq!(m.add("login by user-alice ok").template, "login by {var} ok");
    }

    #[test]
    fn lru_bounds_templates() {
        let cfg = MinerConfig { max_templates: 3, ..MinerConfig::default() };
        let mut m = Miner::new(cfg);
        for w in ["alpha", "bravo", "charlie", "delta", "echo"] {
            m.add(&format!("{w} happened here now"));
            m.add(&format!("{w} {w} happened"));
        }
        assert_eq!(m.templates().len(), 3);
        let kept: Vec<String> = m.templates().iter().map(|t| t.text("<*>")).collect();
        assert!(kept.iter().any(|t| t.starts_with("echo")), "{kept:?}");
        assert!(!kept.iter().any(|t| t.starts_with("alpha")), "{kept:?}");
    }

    #[test]
    fn snapshot_restore_is_identical() {
        let lines: Vec<String> = (0..300)
            .map(|i| format!("job {} step {} state {}", i % 7, i, ["ok", "failed", "retry"][i % 3]))
            .collect();
        let mut a = Miner::new(MinerConfig::default());
        for l in &lines[..150] {
            a.add(l);
        }
        let state = a.snapshot();
        let json = serde_json::to_string(&state).unwrap();
        let mut b =
            Miner::restore(MinerConfig::default(), serde_json::from_str(&json).unwrap()).unwrap();
        for l in &lines[150..] {
            assert_eq!(a.add(l), b.add(l));
        }
        assert_eq!(
            serde_json::to_string(&a.snapshot()).unwrap(),
            serde_json::to_string(&b.snapshot()).unwrap()
        );
    }

    #[test]
    fn deterministic_and_empty() {
        let lines = ["a b c", "", "a x c", "   "];
        let (_, v1) = mine(&lines);
        let (_, v2) = mine(&lines);
        assert_eq!(v1, v2);
        assert_eq!(v1[1].template, "");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(lines in proptest::collection::vec(".{0,80}", 0..30)) {
            let mut m = Miner::new(MinerConfig { max_templates: 5, ..MinerConfig::default() });
            for l in &lines {
                let r = m.add(l);
                proptest::prop_assert!(m.template(r.id).is_some());
            }
        }
    }
}
