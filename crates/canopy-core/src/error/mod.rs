//! The one error type of Canopy.
//!
//! Every layer returns [`Error`]. The store converts its database errors into it, services
//! build it with a [`Code`] from the table in [`codes`], and the HTTP layer renders it into the
//! envelope `{"error": {"code", "message", "field"?, "suggestion"?, "docs", …}}` in exactly one
//! place. A `source` is kept for the logs and never shown to a client.

mod codes;

pub use codes::Code;

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Value};

pub type Result<T, E = Error> = std::result::Result<T, E>;

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure with a public code and message, and an optional private cause. Boxed so that
/// `Result<T, Error>` stays one pointer wide on the happy path.
pub struct Error(Box<ErrorInner>);

/// The parts of an [`Error`] (reachable as fields through `Deref`).
pub struct ErrorInner {
    pub code: Code,
    pub message: Cow<'static, str>,
    pub field: Option<String>,
    pub suggestion: Option<String>,
    /// Extra members of the envelope (e.g. `retry_after`, `current_usage`).
    pub extra: Map<String, Value>,
    /// The internal cause; logged, never serialized.
    pub source: Option<Source>,
}

impl Error {
    pub fn new(code: Code, message: impl Into<Cow<'static, str>>) -> Self {
        Error(Box::new(ErrorInner {
            code,
            message: message.into(),
            field: None,
            suggestion: None,
            extra: Map::new(),
            source: None,
        }))
    }

    /// Takes the parts out (for renderers that consume them).
    pub fn into_inner(self) -> ErrorInner {
        *self.0
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn with_suggestion(mut self, suggestion: impl Into<String>) -> Self {
        self.suggestion = Some(suggestion.into());
        self
    }

    pub fn with_extra(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// An unexpected failure: the client sees a generic message, the log sees `source`.
    pub fn internal(source: impl Into<Source>) -> Self {
        Error::new(
            Code::Internal,
            "Something unexpected went wrong. It has been logged.",
        )
        .with_source(source)
    }

    /// A resource that does not exist *for this caller* (also used for other tenants' ids).
    pub fn not_found(what: &str) -> Self {
        Error::new(Code::NotFound, format!("{what} not found."))
    }

    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(Code::Unauthorized, message)
    }

    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(Code::Forbidden, message)
    }

    pub fn validation(field: &str, message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(Code::ValidationError, message).with_field(field)
    }

    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(Code::Conflict, message)
    }

    pub fn status(&self) -> http::StatusCode {
        self.code.status()
    }
}

impl std::ops::Deref for Error {
    type Target = ErrorInner;
    fn deref(&self) -> &ErrorInner {
        &self.0
    }
}

impl std::ops::DerefMut for Error {
    fn deref_mut(&mut self) -> &mut ErrorInner {
        &mut self.0
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("code", &self.code.as_str())
            .field("message", &self.message);
        if let Some(field) = &self.field {
            d.field("field", field);
        }
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)?;
        if let Some(source) = &self.source {
            write!(f, " ({source})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::internal(e)
    }
}
