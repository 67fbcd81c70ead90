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
        let mut rest = format;
        while let Some(open) = rest.find('<') {
            let Some(close) = rest[open..].find('>') else { break };
            let name = &rest[open + 1..open + close];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                // Not a placeholder: keep it as literal text.
                push_literal(&mut pattern, &rest[..open + close + 1]);
                rest = &rest[open + close + 1..];
                continue;
            }
            push_literal(&mut pattern, &rest[..open]);
            if fields.iter().any(|f| f == name) {
                return Err(err(format!("field <{name}> appears twice")));
            }
            let group = format!("f{}", fields.len());
            pattern.push_str(&format!("(?P<{group}>.*?)"));
            fields.push(name.to_string());
            rest = &rest[open + close + 1..];
        }
        push_literal(&mut pattern, rest);
        pattern.push('$');
        let content = fields
            .iter()
            .position(|f| f == "Content")
            .ok_or_else(|| err("it has no <Content> field".to_string()))?;
        let re = Regex::new(&pattern).map_err(|e| err(e.to_string()))?;
        Ok(Self { re, fields, content_group: format!("f{content}") })
    }

    /// The field names, in order.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// Splits a line into its fields; `None` when the line does not match.
    pub fn split<'a>(&self, line: &'a str) -> Option<Vec<&'a str>> {
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

    #[test]
    fn bad_formats() {
        assert!(LogFormat::new("<Date> <Time>").is_err());
        assert!(LogFormat::new("<Content> <Content>").is_err());
        assert!(LogFormat::new("(<Content>").is_err());
    }
}
