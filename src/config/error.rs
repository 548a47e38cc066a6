//! Configuration errors. Every problem names the file, the dotted key and, when the value
//! came from the file, the line, so that an operator can fix all of them in one edit.

use std::fmt;
use std::ops::Range;

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file as the operator named it (or a label such as `<embedded defaults>`).
    pub file: String,
    /// Dotted key, e.g. `policy.non_compliant`, `dkim[1].selector` (indexes count from 0),
    /// or empty for problems with the file as a whole (unreadable, TOML syntax).
    pub key: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    /// `FILE:LINE: KEY: MESSAGE`, the shape compilers use, so editors can jump to it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// All problems found in one run (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// A problem with the file as a whole (no key, no line).
    pub(crate) fn whole_file(file: &str, message: impl Into<String>) -> Self {
        Self(vec![ConfigError {
            file: file.to_string(),
            key: String::new(),
            line: None,
            message: message.into(),
        }])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects the errors of one document and turns byte offsets into line numbers.
pub(crate) struct Report<'a> {
    file: &'a str,
    /// Byte offset at which each line starts; `line_starts[0] == 0`.
    line_starts: Vec<usize>,
    errors: Vec<ConfigError>,
}

impl<'a> Report<'a> {
    pub(crate) fn new(file: &'a str, text: &str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            file,
            line_starts,
            errors: Vec::new(),
        }
    }

    /// 1-based line holding byte `offset`.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    /// Line of a value's span. Values that did not come from the file (defaults) carry the
    /// empty span `0..0` (see `raw::unspanned`) and have no line; every real TOML value or
    /// key is at least one byte long.
    pub(crate) fn line_of_span(&self, span: &Range<usize>) -> Option<usize> {
        if span.is_empty() && span.start == 0 {
            None
        } else {
            Some(self.line_of(span.start))
        }
    }

    pub(crate) fn error(
        &mut self,
        key: impl Into<String>,
        span: &Range<usize>,
        message: impl Into<String>,
    ) {
        let line = self.line_of_span(span);
        self.error_at_line(key, line, message);
    }

    pub(crate) fn error_at_line(
        &mut self,
        key: impl Into<String>,
        line: Option<usize>,
        message: impl Into<String>,
    ) {
        self.errors.push(ConfigError {
            file: self.file.to_string(),
            key: key.into(),
            line,
            message: message.into(),
        });
    }

    /// Was a problem with `key` reported already? A key dropped for having the wrong type
    /// must not be reported a second time as missing.
    pub(crate) fn reported(&self, key: &str) -> bool {
        self.errors.iter().any(|e| e.key == key)
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The errors in file order (the checks run section by section, the operator reads top
    /// to bottom); problems without a line come last.
    pub(crate) fn finish(mut self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            return Ok(());
        }
        self.errors
            .sort_by_key(|e| (e.line.is_none(), e.line.unwrap_or(0)));
        Err(ConfigErrors(self.errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_are_one_based() {
        let r = Report::new("f", "a\nbb\n\nc");
        assert_eq!(r.line_of(0), 1);
        assert_eq!(r.line_of(1), 1); // the newline itself belongs to line 1
        assert_eq!(r.line_of(2), 2);
        assert_eq!(r.line_of(5), 3);
        assert_eq!(r.line_of(6), 4);
        assert_eq!(r.line_of(100), 4);
        assert_eq!(r.line_of_span(&(0..0)), None);
        assert_eq!(r.line_of_span(&(0..1)), Some(1));
    }

    #[test]
    fn display_shapes() {
        let mut e = ConfigError {
            file: "/etc/x.toml".into(),
            key: "policy.default".into(),
            line: Some(7),
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "/etc/x.toml:7: policy.default: bad");
        e.line = None;
        assert_eq!(e.to_string(), "/etc/x.toml: policy.default: bad");
        e.key.clear();
        assert_eq!(e.to_string(), "/etc/x.toml: bad");
        let all = ConfigErrors(vec![e.clone(), e]);
        assert_eq!(all.to_string(), "/etc/x.toml: bad\n/etc/x.toml: bad");
    }
}
