//! Errors of the model: every one names where the bad value was and what was expected.

use std::fmt;
use std::path::PathBuf;

/// Where in a profile (file or D-Bus dict) a value was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, when the profile came from disk.
    pub file: Option<PathBuf>,
    /// The section (`connection`, `vpn`, `ipv4`, …).
    pub section: String,
    /// The key inside the section, when the problem is one key.
    pub key: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        write!(f, "[{}]", self.section)?;
        if let Some(key) = &self.key {
            write!(f, " {key}")?;
        }
        Ok(())
    }
}

/// A profile that could not be read, parsed or validated.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{}: not valid TOML: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// The file is not safe to take secrets and settings from (NetworkManager refuses it too).
    #[error("{}: insecure, not loaded: {why}", path.display())]
    Insecure {
        /// The file.
        path: PathBuf,
        /// Owner or permissions, and what to do.
        why: String,
    },
    /// A value is missing, of the wrong type, or out of range.
    #[error("{at}: {message}")]
    Invalid {
        /// Where.
        at: Location,
        /// What is wrong and what was expected.
        message: String,
    },
}

impl ProfileError {
    /// A problem with one key of one section.
    pub fn key(section: &str, key: &str, message: impl Into<String>) -> Self {
        ProfileError::Invalid {
            at: Location {
                file: None,
                section: section.to_string(),
                key: Some(key.to_string()),
            },
            message: message.into(),
        }
    }

    /// A problem with a whole section.
    pub fn section(section: &str, message: impl Into<String>) -> Self {
        ProfileError::Invalid {
            at: Location {
                file: None,
                section: section.to_string(),
                key: None,
            },
            message: message.into(),
        }
    }

    /// The file the error is about, when known.
    pub fn file(&self) -> Option<&std::path::Path> {
        match self {
            ProfileError::Read { path, .. }
            | ProfileError::Syntax { path, .. }
            | ProfileError::Insecure { path, .. } => Some(path),
            ProfileError::Invalid { at, .. } => at.file.as_deref(),
        }
    }

    /// The same error, attributed to a file.
    pub fn in_file(self, path: &std::path::Path) -> Self {
        match self {
            ProfileError::Invalid { mut at, message } => {
                at.file = Some(path.to_path_buf());
                ProfileError::Invalid { at, message }
            }
            other => other,
        }
    }
}
