//! Field-level validation errors, collected so that a caller learns every
//! problem with its input at once rather than one per round trip.

use std::fmt;

/// One invalid field: its JSON path (`contact.email`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }

    /// The same error, its field nested under `prefix` (`email` → `contact.email`).
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() { prefix.to_owned() } else { format!("{prefix}.{}", self.field) };
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Collects field errors while parsing a whole input.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the value of a successful parse; records the error of a failed one.
    pub fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    /// Like [`check`](Self::check) for an optional input: `None` stays `None`.
    pub fn check_opt<T, U>(&mut self, input: Option<U>, parse: impl FnOnce(U) -> Result<T, FieldError>) -> Option<Option<T>> {
        match input {
            None => Some(None),
            Some(u) => self.check(parse(u)).map(Some),
        }
    }

    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// Ends validation: `Ok(value)` when no error was recorded, every error otherwise.
    /// `value` is only called when everything parsed.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, Vec<FieldError>> {
        if self.errors.is_empty() { value().ok_or_else(|| vec![FieldError::new("", "invalid input")]) } else { Err(self.errors) }
    }
}

/// A required, trimmed, non-empty text of at most `max` characters.
pub fn required_text(field: &str, input: &str, max: usize) -> Result<String, FieldError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if text.chars().count() > max {
        return Err(FieldError::new(field, format!("must be at most {max} characters")));
    }
    if text.chars().any(|c| c.is_control()) {
        return Err(FieldError::new(field, "must not contain control characters"));
    }
    Ok(text.to_owned())
}

/// An optional text: empty or blank input means absent.
pub fn optional_text(field: &str, input: Option<&str>, max: usize) -> Result<Option<String>, FieldError> {
    match input.map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => required_text(field, t, max).map(Some),
    }
}

/// Parses an RFC 3339 time or a `YYYY-MM-DD` date (midnight UTC).
pub fn parse_time(field: &str, input: &str) -> Result<jiff::Timestamp, FieldError> {
    let s = input.trim();
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    s.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| FieldError::new(field, "must be an RFC 3339 time (2026-01-31T09:00:00Z) or a date (2026-01-31)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validator_reports_every_error_not_only_the_first() {
        let mut v = Validator::new();
        let a = v.check(required_text("name", "  ", 10));
        let b = v.check(required_text("title", "x".repeat(11).as_str(), 10));
        let r: Result<(String, String), _> = v.finish(|| Some((a?, b?)));
        let errors = r.unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].field, "name");
        assert_eq!(errors[1].message, "must be at most 10 characters");
    }

    #[test]
    fn nesting_prefixes_the_path() {
        assert_eq!(FieldError::new("email", "bad").under("contact").field, "contact.email");
    }
}
