//! Workspaces: one vendor's program each, fully isolated from the others.

use jiff::Timestamp;

use crate::error::AppError;
use crate::ids;
use crate::store::{Store, Workspace};

pub const DEFAULT_SLUG: &str = "default";

/// Checks a workspace slug: lower-case letters, digits and '-', 1–63 long.
pub fn parse_slug(input: &str) -> Result<String, AppError> {
    let s = input.trim();
    let ok = !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok { Ok(s.to_owned()) } else { Err(AppError::invalid("workspace", "must be 1-63 lower-case letters, digits or '-'")) }
}

/// The workspace with this slug, created when it does not exist yet.
pub async fn ensure(store: &dyn Store, slug: &str, now: Timestamp) -> Result<Workspace, AppError> {
    let slug = parse_slug(slug)?;
    let name = if slug == DEFAULT_SLUG { "Default workspace".to_owned() } else { slug.clone() };
    Ok(store.ensure_workspace(&slug, &name, ids::workspace_id(now), now).await?)
}
