//! Errors for configuration and workload files.

use miette::Diagnostic;
use std::path::PathBuf;
use thiserror::Error;

/// A parameter that fails validation: names the field, says why and how to fix it.
#[derive(Debug, Clone, Error, Diagnostic, PartialEq, Eq)]
#[error("invalid `{field}`: {message}")]
#[diagnostic(code(systole::config))]
pub struct ConfigError {
    /// Dotted path of the offending field, e.g. `rows` or `layer[3].stride`.
    pub field: String,
    /// What is wrong with its value.
    pub message: String,
    /// How to fix it.
    #[help]
    pub help: Option<String>,
}

impl ConfigError {
    /// A new error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into(), help: None }
    }

    /// Adds a suggested fix.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Prefixes the field path, e.g. `layer[2]` + `stride` = `layer[2].stride`.
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = format!("{prefix}.{}", self.field);
        self
    }
}

/// Failure to read a TOML file (architecture or workload), with the file named.
#[derive(Debug, Error, Diagnostic)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    #[diagnostic(code(systole::io))]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("{path}: {message}")]
    #[diagnostic(code(systole::parse), help("see configs/ for examples of well-formed files"))]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message, which names the line and field.
        message: String,
    },
    /// A data file (e.g. a tensor in `.npy`) has the wrong type, shape or contents.
    #[error("{path}: {message}")]
    #[diagnostic(code(systole::data))]
    Data {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the tensor.
        message: String,
        /// How to fix it.
        #[help]
        help: String,
    },
    /// The file parsed but a value is invalid.
    #[error("{path}: {error}")]
    #[diagnostic(code(systole::invalid))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The validation error.
        error: ConfigError,
        /// How to fix it (from `source`).
        #[help]
        help: Option<String>,
    },
}

impl LoadError {
    /// A validation error in the file at `path`.
    pub fn invalid(path: &std::path::Path, error: ConfigError) -> Self {
        LoadError::Invalid { path: path.to_owned(), help: error.help.clone(), error }
    }
}

/// Reads and parses a TOML file into `T`, naming the file in any error; `what` names the
/// kind of file (e.g. "an architecture file") if it is not a regular UTF-8 file of at most
/// [`crate::input::MAX_TOML_BYTES`].
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &std::path::Path, what: &str) -> Result<T, LoadError> {
    let text = crate::input::read_text(path, crate::input::MAX_TOML_BYTES, what)?;
    parse_toml(path, &text)
}

/// Parses `text`, the TOML file `path`, into `T`, naming the file in any error.
pub fn parse_toml<T: serde::de::DeserializeOwned>(path: &std::path::Path, text: &str) -> Result<T, LoadError> {
    toml::from_str(text).map_err(|e| LoadError::Parse { path: path.to_owned(), message: e.to_string() })
}
