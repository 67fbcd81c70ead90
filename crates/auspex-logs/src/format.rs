//! Header formats in logparser's `log_format` syntax, e.g.
//! `<Date> <Time> <Pid> <Level> <Component>: <Content>`.
//!
//! Each `<Name>` is a captured field (non-greedy), the literal text between placeholders is a
//! regular-expression fragment (so `\[`, `\|` and optional groups like `(\[<PID>\])?` work),
//! and every run of spaces matches one or more whitespace characters. The whole (trimmed)
//! line must match; `<Content>` is the message that gets mined.

use regex::Regex;

/// A compiled header format.
#[derive(Debug, Clone)]
pub struct LogFormat {
    re: Regex,
    fields: Vec<String>,
    content_group: String,
    /// A plain matcher for formats without regex constructs (most of them): the same answer
    /// as the regex whenever it finds a match, several times faster.
    fast: Option<Vec<Part>>,
    content: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Field,
    /// Literal text; `None` pieces are runs of whitespace (one or more).
    Lit(Vec<Option<String>>),
}

/// The literal text of a fragment, or `None` if it has regex constructs.
fn plain(lit: &str) -> Option<Vec<Option<String>>> {
    let mut out: Vec<Option<String>> = Vec::new();
    let mut cur = String::new();
    let mut chars = lit.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {
                if !cur.is_empty() {
                    out.push(Some(std::mem::take(&mut cur)));
                }
                if out.last() != Some(&None) {
                    out.push(None);
                }
            }
            '\\' => {
                let n = chars.next()?;
                if n.is_ascii_alphanumeric() {
                    return None; // \s, \d, ...
                }
                cur.push(n);
            }
            '(' | ')' | '?' | '*' | '+' | '|' | '{' | '}' | '^' | '$' | '.' | '[' | ']' => {
                return None;
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(Some(cur));
    }
    Some(out)
}

/// Matches `lit` at `pos` of `s`; returns the end.
fn lit_at(s: &str, pos: usize, lit: &[Option<String>]) -> Option<usize> {
    let mut p = pos;
    for piece in lit {
        match piece {
            Some(t) => {
                if !s[p..].starts_with(t.as_str()) {
                    return None;
                }
                p += t.len();
            }
            None => {
                let ws = s[p..].len() - s[p..].trim_start().len();
                if ws == 0 {
                    return None;
                }
                p += ws;
            }
        }
    }
    Some(p)
}

/// The offset of the first whitespace character of `s` (`char::is_whitespace`).
fn next_space(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c < 0x80 {
            if matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
                return Some(i);
            }
            i += 1;
        } else {
            let ch = s[i..].chars().next()?;
            if ch.is_whitespace() {
                return Some(i);
            }
            i += ch.len_utf8();
        }
    }
    None
}

/// Like [`fast_split`] but returns only field `want`, without allocating.
fn fast_content<'a>(parts: &[Part], s: &'a str, want: usize) -> Option<&'a str> {
    let mut found = None;
    let mut k = 0;
    fast_walk(parts, s, |f| {
        if k == want {
            found = Some(f);
        }
        k += 1;
    })?;
    found
}

fn fast_split<'a>(parts: &[Part], s: &'a str) -> Option<Vec<&'a str>> {
    let mut out = Vec::new();
    fast_walk(parts, s, |f| out.push(f))?;
    Some(out)
}

fn fast_walk<'a>(parts: &[Part], s: &'a str, mut out: impl FnMut(&'a str)) -> Option<()> {
    let mut pos = 0;
    let mut i = 0;
    while i < parts.len() {
        match &parts[i] {
            Part::Lit(l) => {
                pos = lit_at(s, pos, l)?;
                i += 1;
            }
            Part::Field => match parts.get(i + 1) {
                None => {
                    out(&s[pos..]);
                    pos = s.len();
                    i += 1;
                }
                Some(Part::Lit(l)) => {
                    let last = i + 2 == parts.len();
                    let mut found = None;
                    let mut q = pos;
                    while q <= s.len() {
                        // Jump to the next place the literal's first piece can start.
                        let next = match l.first() {
                            Some(Some(t)) => t
                                .as_bytes()
                                .first()
                                .and_then(|&b| s.as_bytes()[q..].iter().position(|&c| c == b)),
                            Some(None) => next_space(&s[q..]),
                            None => Some(0),
                        };
                        let Some(d) = next else { break };
                        q += d;
                        if let Some(e) = lit_at(s, q, l)
                            && (!last || e == s.len())
                        {
                            found = Some((q, e));
                            break;
                        }
                        q += s[q..].chars().next().map_or(1, char::len_utf8);
                    }
                    let (q, e) = found?;
                    out(&s[pos..q]);
                    pos = e;
                    i += 2;
                }
                Some(Part::Field) => return None,
            },
        }
    }
    (pos == s.len()).then_some(())
}

/// A format that could not be compiled.
#[derive(Debug, thiserror::Error)]
#[error("bad log format {format:?}: {why}")]
pub struct FormatError {
    /// The format as given.
    pub format: String,
    /// What was wrong.
    pub why: String,
}

impl LogFormat {
    /// Compiles a format. It must contain `<Content>`.
    pub fn new(format: &str) -> Result<Self, FormatError> {
        let err = |why: String| FormatError { format: format.to_string(), why };
        let mut pattern = String::from("^");
        let mut fields = Vec::new();
        let mut parts: Option<Vec<Part>> = Some(Vec::new());
        let lit = |parts: &mut Option<Vec<Part>>, text: &str| {
            if text.is_empty() {
                return;
            }
            match (plain(text), parts.as_mut()) {
                (Some(p), Some(v)) => v.push(Part::Lit(p)),
                _ => *parts = None,
            }
        };
        let mut rest = format;
        while let Some(open) = rest.find('<') {
            let Some(close) = rest[open..].find('>') else { break };
            let name = &rest[open + 1..open + close];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                // Not a placeholder: keep it as literal text.
                push_literal(&mut pattern, &rest[..open + close + 1]);
                lit(&mut parts, &rest[..open + close + 1]);
                rest = &rest[open + close + 1..];
                continue;
            }
            push_literal(&mut pattern, &rest[..open]);
            lit(&mut parts, &rest[..open]);
            if let Some(v) = parts.as_mut() {
                v.push(Part::Field);
            }
            if fields.iter().any(|f| f == name) {
                return Err(err(format!("field <{name}> appears twice")));
            }
            let group = format!("f{}", fields.len());
            pattern.push_str(&format!("(?P<{group}>.*?)"));
            fields.push(name.to_string());
            rest = &rest[open + close + 1..];
        }
        push_literal(&mut pattern, rest);
        lit(&mut parts, rest);
        pattern.push('$');
        let content = fields
            .iter()
            .position(|f| f == "Content")
            .ok_or_else(|| err("it has no <Content> field".to_string()))?;
        let re = Regex::new(&pattern).map_err(|e| err(e.to_string()))?;
        Ok(Self { re, fields, content_group: format!("f{content}"), fast: parts, content })
    }

    /// The field names, in order.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// Splits a line into its fields; `None` when the line does not match.
    pub fn split<'a>(&self, line: &'a str) -> Option<Vec<&'a str>> {
        if let Some(parts) = &self.fast
            && let Some(v) = fast_split(parts, line.trim())
        {
            return Some(v);
        }
        let caps = self.re.captures(line.trim())?;
        Some(
            (0..self.fields.len())
                .map(|i| caps.name(&format!("f{i}")).map_or("", |m| m.as_str()))
                .collect(),
        )
    }

    /// The `<Content>` of a line; the whole trimmed line when it does not match.
    pub fn content<'a>(&self, line: &'a str) -> (&'a str, bool) {
        let t = line.trim();
        if let Some(parts) = &self.fast
            && let Some(c) = fast_content(parts, t, self.content)
        {
            return (c, true);
        }
        match self.re.captures(t) {
            Some(c) => (c.name(&self.content_group).map_or("", |m| m.as_str()), true),
            None => (t, false),
        }
    }
}

/// Literal text of a format is a regex fragment; runs of spaces become `\s+`.
fn push_literal(pattern: &mut String, lit: &str) {
    let mut in_space = false;
    for c in lit.chars() {
        if c == ' ' {
            if !in_space {
                pattern.push_str(r"\s+");
                in_space = true;
            }
        } else {
            in_space = false;
            pattern.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hdfs_format() {
        let f = LogFormat::new("<Date> <Time> <Pid> <Level> <Component>: <Content>").unwrap();
        let line = "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating";
        let parts = f.split(line).unwrap();
        assert_eq!(parts[0], "081109");
        assert_eq!(parts[4], "dfs.DataNode$PacketResponder");
        assert_eq!(
            f.content(line).0,
            "PacketResponder 1 for block blk_38865049064139660 terminating"
        );
    }

    #[test]
    fn regex_fragments_and_optional_groups() {
        let f = LogFormat::new(r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>")
            .unwrap();
        assert_eq!(
            f.content("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown").0,
            "check pass; user unknown"
        );
        assert_eq!(f.content("Jun 14 15:16:01 combo kernel: hello world").0, "hello world");
        let f = LogFormat::new(r"<Time>\|<Component>\|<Pid>\|<Content>").unwrap();
        assert_eq!(
            f.content("20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579").0,
            "onStandStepChanged 3579"
        );
    }

    #[test]
    fn non_matching_lines_keep_the_whole_line() {
        let f = LogFormat::new("<Date> <Time> - <Content>").unwrap();
        assert_eq!(f.content("  just text  "), ("just text", false));
    }

    /// The plain matcher and the regex agree on every line they both accept.
    #[test]
    fn fast_path_agrees_with_the_regex() {
        let formats = [
            "<Date> <Time> <Pid> <Level> <Component>: <Content>",
            "<Date> <Time> - <Level>  \\[<Node>:<Component>@<Id>\\] - <Content>",
            "<Date> <Time>, <Level>                  <Component>    <Content>",
            "\\[<Time>\\] <Program> - <Content>",
        ];
        let lines = [
            "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block x: y",
            "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - Notification time out: 3200",
            "2016-09-28 04:30:30, Info                  CBS    Loaded Servicing Stack v6.1.7601.23505",
            "[10.30 16:49:06] chrome.exe - proxy.cse.cuhk.edu.hk:5070 open through proxy",
            "no match here",
            "",
        ];
        for f in formats {
            let lf = LogFormat::new(f).unwrap();
            assert!(lf.fast.is_some(), "{f}");
            for l in lines {
                let fast = fast_split(lf.fast.as_ref().unwrap(), l.trim());
                let slow = lf.re.captures(l.trim()).map(|c| {
                    (0..lf.fields.len())
                        .map(|i| c.name(&format!("f{i}")).map_or("", |m| m.as_str()))
                        .collect::<Vec<_>>()
                });
                if let Some(fv) = fast {
                    assert_eq!(Some(fv), slow, "{f} on {l}");
                }
            }
        }
        assert!(LogFormat::new(r"<A> <B>(\[<C>\])?: <Content>").unwrap().fast.is_none());
    }

    #[test]
    fn bad_formats() {
        assert!(LogFormat::new("<Date> <Time>").is_err());
        assert!(LogFormat::new("<Content> <Content>").is_err());
        assert!(LogFormat::new("(<Content>").is_err());
    }
}
