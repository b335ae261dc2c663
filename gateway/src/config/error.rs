//! Configuration errors that name the file, the line and the key.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a value stands: file, 1-based line and column (0 when unknown).
#[derive(Debug, Clone)]
pub struct At {
    /// The file.
    pub file: Arc<PathBuf>,
    /// 1-based line, or 0.
    pub line: usize,
    /// 1-based column, or 0.
    pub column: usize,
}

/// One problem in the configuration.
#[derive(Debug, Clone)]
pub struct ConfigError {
    /// Where.
    pub at: At,
    /// What is wrong, naming the key or value.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.at.file.display())?;
        if self.at.line > 0 {
            write!(f, ":{}", self.at.line)?;
            if self.at.column > 0 {
                write!(f, ":{}", self.at.column)?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found (validation goes on after the first, so one run shows them all).
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A source text, to turn byte spans into lines and columns.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file.
    pub file: Arc<PathBuf>,
    text: Arc<str>,
    /// Where each line starts (byte offsets), so that locating a span is a binary search — a
    /// registry of 100,000 `[[units]]` locates every value it checks.
    line_starts: Arc<[usize]>,
}

impl Source {
    /// A file's text.
    pub fn new(file: &Path, text: &str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            file: Arc::new(file.to_path_buf()),
            text: text.into(),
            line_starts,
        }
    }

    /// The location of a byte span (its start).
    pub fn at(&self, span: &Range<usize>) -> At {
        if span.start == 0 && span.end == 0 {
            // a default value: no place in the file
            return At {
                file: self.file.clone(),
                line: 0,
                column: 0,
            };
        }
        let start = span.start.min(self.text.len());
        // the last line that starts at or before `start`
        let index = self.line_starts.partition_point(|&l| l <= start) - 1;
        let line_start = self.line_starts[index];
        let column = self
            .text
            .get(line_start..start)
            .map_or(0, |l| l.chars().count())
            + 1;
        At {
            file: self.file.clone(),
            line: index + 1,
            column,
        }
    }

    /// An error at a span.
    pub fn error(&self, span: &Range<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            at: self.at(span),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_is_located_by_line_and_character_column() {
        let text = "a = 1\n名称 = \"x\"\n\nlast";
        let src = Source::new(Path::new("f.toml"), text);
        let at = |start: usize| {
            let a = src.at(&(start..start + 1));
            (a.line, a.column)
        };
        assert_eq!(at(1), (1, 2));
        assert_eq!(at(6), (2, 1), "the first byte of a line");
        let value = text.find('"').unwrap();
        assert_eq!(at(value), (2, 6), "columns count characters, not bytes");
        assert_eq!(at(text.find("last").unwrap()), (4, 1));
        assert_eq!(at(text.len()), (4, 5), "the end of the text");
        assert_eq!(src.at(&(0..0)).line, 0, "no place: a default value");
    }
}
