//! The batch pipeline behind `auspex logs parse|templates` and `auspex bench loghub`:
//! split physical lines, take each line's message (header format, JSON or logfmt), mine it.
//!
//! Every physical line gets exactly one row: CR/LF are stripped, empty lines are kept,
//! `LineId` is the 1-based line number, and a line that does not match the header format is
//! mined whole. Invalid UTF-8 is kept lossily and counted; very long lines are truncated by
//! the miner's `max_message_bytes`. With several threads, header splitting runs in parallel
//! and mining stays sequential, so the output does not depend on the thread count.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Read, Write};

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
    pub fn message<'a>(&self, line: &'a str) -> (Cow<'a, str>, bool) {
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
    /// Lines longer than [`MAX_LINE_BYTES`], of which only the start was read.
    pub truncated: u64,
}

/// Longest physical line read; the rest of a longer line is skipped (and counted), so a file
/// without newlines cannot exhaust memory. The miner truncates messages further
/// (`MinerConfig::max_message_bytes`).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Bytes read per block: lines are split, decoded and mined a block at a time.
const BLOCK_BYTES: usize = 4 << 20;

/// Splits physical lines: LF separated, a trailing CR stripped; no line after a final LF.
pub fn lines(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    let empty = input.is_empty();
    body.split(|&c| c == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).filter(move |_| !empty)
}

/// Parses and mines a whole input held in memory.
pub fn parse(input: &[u8], fmt: &InputFormat, cfg: MinerConfig, threads: usize) -> Parsed {
    // Reading from a slice cannot fail.
    parse_reader(input, fmt, cfg, threads).unwrap_or_else(|_| unreachable!())
}

/// Parses and mines a stream, a block of lines at a time: memory is one block plus four bytes
/// per line plus the templates, whatever the input size.
pub fn parse_reader<R: Read>(
    mut input: R,
    fmt: &InputFormat,
    cfg: MinerConfig,
    threads: usize,
) -> std::io::Result<Parsed> {
    let threads = threads.clamp(1, 64);
    let mut st = State {
        miner: Miner::new(cfg),
        line_template: Vec::new(),
        texts: HashMap::new(),
        invalid_utf8: 0,
        unmatched: 0,
        truncated: 0,
    };
    let mut buf: Vec<u8> = Vec::new();
    // True while skipping the rest of an over-long line.
    let mut skipping = false;
    let mut eof = false;
    while !eof {
        // Fill the block.
        while buf.len() < BLOCK_BYTES {
            let old = buf.len();
            buf.resize(old + 64 * 1024, 0);
            let n = loop {
                match input.read(&mut buf[old..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            };
            buf.truncate(old + n);
            if n == 0 {
                eof = true;
                break;
            }
        }
        // Complete lines end at the last LF; at EOF the rest is a line too (if any).
        let cut = if eof {
            buf.len()
        } else {
            match buf.iter().rposition(|&c| c == b'\n') {
                Some(p) => p + 1,
                None => {
                    // One line longer than a block: keep its start, skip the rest.
                    if !skipping && buf.len() >= MAX_LINE_BYTES {
                        skipping = true;
                        st.truncated += 1;
                        let head: Vec<u8> = buf[..MAX_LINE_BYTES].to_vec();
                        st.block(&head, fmt, threads, false);
                        buf.clear();
                    } else if skipping {
                        buf.clear();
                    }
                    continue;
                }
            }
        };
        let (mut block, rest) = buf.split_at(cut);
        if skipping {
            // The first line of this block is the tail of the over-long line.
            let p = block.iter().position(|&c| c == b'\n').map_or(block.len(), |p| p + 1);
            block = &block[p..];
            skipping = false;
        }
        let rest = rest.to_vec();
        st.block(block, fmt, threads, true);
        buf.clear();
        buf.extend_from_slice(&rest);
    }
    for t in st.miner.templates() {
        st.texts.insert(t.id, t.text(&st.miner.config().placeholder));
    }
    let State { miner, line_template, texts, invalid_utf8, unmatched, truncated } = st;
    Ok(Parsed { line_template, texts, miner, invalid_utf8, unmatched, truncated })
}

/// Calls `f` with each line of a block (see [`lines`]), decoded; lines that are not valid
/// UTF-8 are decoded lossily and counted in `invalid`. A valid block (the common case) is
/// checked once, not line by line.
fn for_each_line<'a>(
    block: &'a [u8],
    whole: bool,
    invalid: &mut u64,
    mut f: impl FnMut(Cow<'a, str>),
) {
    if !whole {
        let l = block.strip_suffix(b"\r").unwrap_or(block);
        let s = String::from_utf8_lossy(l);
        *invalid += u64::from(matches!(s, Cow::Owned(_)));
        return f(s);
    }
    if let Ok(s) = std::str::from_utf8(block) {
        let body = s.strip_suffix('\n').unwrap_or(s);
        for l in body.split('\n') {
            f(Cow::Borrowed(l.strip_suffix('\r').unwrap_or(l)));
        }
        return;
    }
    for l in lines(block) {
        let s = String::from_utf8_lossy(l);
        *invalid += u64::from(matches!(s, Cow::Owned(_)));
        f(s);
    }
}

struct State {
    miner: Miner,
    line_template: Vec<u32>,
    texts: HashMap<u32, String>,
    invalid_utf8: u64,
    unmatched: u64,
    truncated: u64,
}

impl State {
    /// Mines the lines of one block. `whole` is false for the head of an over-long line,
    /// which is one line even if it ends in LF.
    fn block(&mut self, block: &[u8], fmt: &InputFormat, threads: usize, whole: bool) {
        if block.is_empty() {
            return;
        }
        if threads == 1 {
            let mut invalid = 0;
            for_each_line(block, whole, &mut invalid, |l| {
                let (m, ok) = fmt.message(&l);
                self.mine(&m, ok);
            });
            self.invalid_utf8 += invalid;
            return;
        }
        let mut text: Vec<Cow<'_, str>> = Vec::new();
        for_each_line(block, whole, &mut self.invalid_utf8, |l| text.push(l));
        // Messages are split in parallel; mining stays sequential (the output does not depend
        // on the thread count).
        let chunk = text.len().div_ceil(threads).max(1);
        let messages: Vec<Vec<(Cow<'_, str>, bool)>> = std::thread::scope(|s| {
            let handles: Vec<_> = text
                .chunks(chunk)
                .map(|part| s.spawn(move || part.iter().map(|l| fmt.message(l)).collect()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
        });
        for (m, ok) in messages.iter().flatten() {
            self.mine(m, *ok);
        }
    }

    fn mine(&mut self, m: &str, ok: bool) {
        self.unmatched += u64::from(!ok);
        let (id, new) = self.miner.add_id(m);
        self.line_template.push(id);
        if new && let Some(t) = self.miner.template(id) {
            // Kept in case the template is evicted before the end (LRU).
            self.texts.insert(id, t.text(&self.miner.config().placeholder));
        }
    }
}

/// Writes `LineId,EventId,EventTemplate` (RFC 4180). Each template's `,EventId,EventTemplate`
/// is escaped once; a row is then the line number and those bytes.
pub fn write_csv<W: Write>(p: &Parsed, out: W) -> std::io::Result<()> {
    let mut rows: HashMap<u32, Vec<u8>> = HashMap::with_capacity(p.texts.len());
    for (id, t) in &p.texts {
        let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
        w.write_record(["", &format!("E{id}"), t])?;
        rows.insert(*id, w.into_inner().map_err(|e| e.into_error())?);
    }
    let fallback = {
        let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
        w.write_record(["", "E0", ""])?;
        w.into_inner().map_err(|e| e.into_error())?
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    out.write_all(b"LineId,EventId,EventTemplate\n")?;
    let mut num = itoa::Buffer::new();
    for (i, id) in p.line_template.iter().enumerate() {
        out.write_all(num.format(i + 1).as_bytes())?;
        out.write_all(rows.get(id).unwrap_or(&fallback))?;
    }
    out.flush()
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

    /// A reader that hands out a few bytes at a time, so lines straddle reads and blocks.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn streaming_in_blocks_matches_mining_line_by_line() {
        // More than two blocks, with CRLF, empty lines and no final newline.
        let mut input = Vec::new();
        let mut i = 0u64;
        while input.len() < 2 * BLOCK_BYTES + 12_345 {
            match i % 5 {
                0 => {
                    input.extend_from_slice(format!("2024 INFO worker {i} started\r\n").as_bytes())
                }
                1 => input.extend_from_slice(b"\n"),
                _ => input.extend_from_slice(format!("2024 WARN disk sd{i} at {i}%\n").as_bytes()),
            }
            i += 1;
        }
        input.extend_from_slice(b"2024 INFO tail without newline");
        let fmt = InputFormat::parse("<Y> <L> <Content>").unwrap();
        let mut oracle = Miner::new(MinerConfig::default());
        let want: Vec<u32> = lines(&input)
            .map(|l| {
                let l = std::str::from_utf8(l).unwrap();
                oracle.add_id(&fmt.message(l).0).0
            })
            .collect();
        let got = parse_reader(Trickle(&input, 70_001), &fmt, MinerConfig::default(), 1).unwrap();
        assert_eq!(got.line_template.len(), want.len());
        assert_eq!(got.line_template, want);
        let two = parse_reader(Trickle(&input, 9_999), &fmt, MinerConfig::default(), 2).unwrap();
        assert_eq!(two.line_template, want);
    }

    #[test]
    fn a_line_longer_than_a_block_is_cut_and_counted() {
        let mut input = vec![b'x'; 2 * BLOCK_BYTES + 5];
        input.extend_from_slice(b"\nnext line\nlast");
        let p =
            parse_reader(Trickle(&input, 1 << 20), &InputFormat::Raw, MinerConfig::default(), 1)
                .unwrap();
        assert_eq!(p.line_template.len(), 3, "the long line is one row");
        assert_eq!(p.truncated, 1);
        assert_eq!(p.texts[&p.line_template[1]], "next line");
        assert_eq!(p.texts[&p.line_template[2]], "last");
    }
}
