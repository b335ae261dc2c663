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
}

impl Source {
    /// A file's text.
    pub fn new(file: &Path, text: &str) -> Self {
        Self {
            file: Arc::new(file.to_path_buf()),
            text: text.into(),
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
        let before = &self.text[..start];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        At {
            file: self.file.clone(),
            line,
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
