//! The batch pipeline behind `auspex logs parse|templates` and `auspex bench loghub`:
//! split physical lines, take each line's message (header format, JSON or logfmt), mine it.
//!
//! Every physical line gets exactly one row: CR/LF are stripped, empty lines are kept,
//! `LineId` is the 1-based line number, and a line that does not match the header format is
//! mined whole. Invalid UTF-8 is kept lossily and counted; very long lines are truncated by
//! the miner's `max_message_bytes`. With several threads, header splitting runs in parallel
//! and mining stays sequential, so the output does not depend on the thread count.

use std::collections::HashMap;
use std::io::Write;

use auspex_logs::{LogFormat, Miner, MinerConfig};

/// How to find the message in a line.
#[derive(Debug, Clone)]
pub enum InputFormat {
    /// The whole line is the message.
    Raw,
    /// A logparser header format; `<Content>` is the message.
    Header(LogFormat),
    /// JSON objects; the first of `message`, `msg`, `log` that is a string is the message.
    Json,
    /// logfmt; the first of `msg`, `message`, `log` is the message.
    Logfmt,
}

impl InputFormat {
    /// `raw`, `json`, `logfmt`, or a header format.
    pub fn parse(s: &str) -> Result<Self, auspex_logs::format::FormatError> {
        match s {
            "raw" => Ok(Self::Raw),
            "json" => Ok(Self::Json),
            "logfmt" => Ok(Self::Logfmt),
            f => LogFormat::new(f).map(Self::Header),
        }
    }

    /// The message of one line and whether the line matched the format.
    pub fn message<'a>(&self, line: &'a str) -> (std::borrow::Cow<'a, str>, bool) {
        use std::borrow::Cow;
        match self {
            Self::Raw => (Cow::Borrowed(line.trim()), true),
            Self::Header(f) => {
                let (c, ok) = f.content(line);
                (Cow::Borrowed(c), ok)
            }
            Self::Json => match serde_json::from_str::<serde_json::Value>(line) {
                Ok(serde_json::Value::Object(m)) => ["message", "msg", "log"]
                    .iter()
                    .find_map(|k| m.get(*k).and_then(|v| v.as_str()))
                    .map_or((Cow::Borrowed(line.trim()), false), |s| {
                        (Cow::Owned(s.to_string()), true)
                    }),
                _ => (Cow::Borrowed(line.trim()), false),
            },
            Self::Logfmt => match logfmt_field(line, &["msg", "message", "log"]) {
                Some(v) => (Cow::Owned(v), true),
                None => (Cow::Borrowed(line.trim()), false),
            },
        }
    }
}

/// The value of the first of `keys` in a logfmt line (`k=v`, `k="quoted \" value"`).
pub fn logfmt_field(line: &str, keys: &[&str]) -> Option<String> {
    let mut found: HashMap<String, String> = HashMap::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &line[ks..i];
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                let c = line[i..].chars().next().unwrap_or(' ');
                val.push(c);
                i += c.len_utf8();
            }
            i += 1;
        } else {
            let vs = i;
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            val.push_str(&line[vs..i]);
        }
        found.insert(key.to_string(), val);
    }
    keys.iter().find_map(|k| found.remove(*k))
}

/// The result of parsing one input.
#[derive(Debug)]
pub struct Parsed {
    /// Template id per line (index = LineId - 1).
    pub line_template: Vec<u32>,
    /// Final template text per id.
    pub texts: HashMap<u32, String>,
    /// The miner, with counts, examples and the final templates.
    pub miner: Miner,
    /// Lines that were not valid UTF-8 (kept lossily).
    pub invalid_utf8: u64,
    /// Lines that did not match the header format (mined whole).
    pub unmatched: u64,
}

/// Splits physical lines: LF separated, a trailing CR stripped; no line after a final LF.
pub fn lines(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    let empty = input.is_empty();
    body.split(|&c| c == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).filter(move |_| !empty)
}

/// Parses and mines a whole input.
pub fn parse(input: &[u8], fmt: &InputFormat, cfg: MinerConfig, threads: usize) -> Parsed {
    let raw: Vec<&[u8]> = lines(input).collect();
    let mut invalid_utf8 = 0u64;
    let text: Vec<std::borrow::Cow<'_, str>> = raw
        .iter()
        .map(|l| {
            let s = String::from_utf8_lossy(l);
            if matches!(s, std::borrow::Cow::Owned(_)) {
                invalid_utf8 += 1;
            }
            s
        })
        .collect();
    // Messages, split in parallel.
    let threads = threads.clamp(1, 64);
    let chunk = text.len().div_ceil(threads).max(1);
    let mut messages: Vec<(String, bool)> = Vec::with_capacity(text.len());
    if threads == 1 {
        messages.extend(text.iter().map(|l| {
            let (m, ok) = fmt.message(l);
            (m.into_owned(), ok)
        }));
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = text
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|l| {
                                let (m, ok) = fmt.message(l);
                                (m.into_owned(), ok)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for h in handles {
                messages.extend(h.join().unwrap_or_default());
            }
        });
    }
    let mut miner = Miner::new(cfg);
    let mut line_template = Vec::with_capacity(messages.len());
    let mut texts = HashMap::new();
    let mut unmatched = 0;
    for (m, ok) in &messages {
        unmatched += u64::from(!ok);
        let (id, new) = miner.add_id(m);
        line_template.push(id);
        if new && let Some(t) = miner.template(id) {
            // Kept in case the template is evicted before the end (LRU).
            texts.insert(id, t.text(&miner.config().placeholder));
        }
    }
    for t in miner.templates() {
        texts.insert(t.id, t.text(&miner.config().placeholder));
    }
    Parsed { line_template, texts, miner, invalid_utf8, unmatched }
}

/// Writes `LineId,EventId,EventTemplate` (RFC 4180).
pub fn write_csv<W: Write>(p: &Parsed, out: W) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["LineId", "EventId", "EventTemplate"])?;
    for (i, id) in p.line_template.iter().enumerate() {
        let t = p.texts.get(id).map_or("", String::as_str);
        w.write_record([(i + 1).to_string(), format!("E{id}"), t.to_string()])?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_physical_line() {
        let input = b"a 1\r\n\r\nb 2\nnot matching\na 3";
        let fmt = InputFormat::parse("<X> <Content>").unwrap();
        let p = parse(input, &fmt, MinerConfig::default(), 1);
        assert_eq!(p.line_template.len(), 5);
        assert_eq!(p.unmatched, 1, "the empty line does not match; 'not matching' does");
        let mut out = Vec::new();
        write_csv(&p, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s.lines().count(), 6);
        assert!(s.lines().nth(2).unwrap().starts_with("2,E"));
        assert_eq!(lines(b"").count(), 0);
        assert_eq!(lines(b"\n").count(), 1);
        assert_eq!(lines(b"x\n\n").count(), 2);
    }

    #[test]
    fn quotes_and_commas_in_templates_are_quoted() {
        let p = parse(b"say \"hi, there\" now", &InputFormat::Raw, MinerConfig::default(), 1);
        let mut out = Vec::new();
        write_csv(&p, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        let mut rd = csv::Reader::from_reader(s.as_bytes());
        let rec = rd.records().next().unwrap().unwrap();
        assert_eq!(&rec[2], "say \"hi, there\" now");
    }

    #[test]
    fn threads_do_not_change_the_output() {
        let input: String =
            (0..500).map(|i| format!("2024 INFO worker {} did task {}\n", i % 9, i)).collect();
        let fmt = InputFormat::parse("<Y> <L> <Content>").unwrap();
        let a = parse(input.as_bytes(), &fmt, MinerConfig::default(), 1);
        let b = parse(input.as_bytes(), &fmt, MinerConfig::default(), 4);
        assert_eq!(a.line_template, b.line_template);
        assert_eq!(a.texts, b.texts);
    }

    #[test]
    fn json_logfmt_and_invalid_utf8() {
        let p = parse(
            b"{\"level\":\"info\",\"msg\":\"user 42 logged in\"}\nnot json",
            &InputFormat::Json,
            MinerConfig::default(),
            1,
        );
        assert_eq!(p.texts[&p.line_template[0]], "user <*> logged in");
        assert_eq!(p.unmatched, 1);
        assert_eq!(
            logfmt_field("ts=1 msg=\"disk \\\"a\\\" full\" x=2", &["msg"]).unwrap(),
            "disk \"a\" full"
        );
        let p = parse(b"level=info msg=hello", &InputFormat::Logfmt, MinerConfig::default(), 1);
        assert_eq!(p.texts[&p.line_template[0]], "hello");
        let p = parse(b"bad \xff\xfe bytes\n", &InputFormat::Raw, MinerConfig::default(), 1);
        assert_eq!(p.invalid_utf8, 1);
    }
}
