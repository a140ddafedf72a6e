//! Knowledge: what agents remember about a project (Minolith context; documents, changelog,
//! feedback and styleguide to follow). Every operation works inside the caller's project.

pub mod assets;
pub mod changelog;
pub mod context;
pub mod documents;
pub mod feedback;
pub mod files;
pub(crate) mod group;
pub mod styleguide;

use std::collections::BTreeSet;

use canopy_core::{Cursor, Error, PageRequest, Paged, ProjectId};

use crate::op::Cx;

/// The project an operation works in: the one named by `X-Canopy-Project` (id or slug), else
/// the key's own project, else (for an org-wide key) the org's `default` project. A project key
/// naming another project, or a name matching nothing in the org, answers 404.
pub async fn current_project(cx: &Cx<'_>) -> Result<ProjectId, Error> {
    let store = cx.svc.store();
    if let Some(hint) = cx.project_hint {
        let row = match ProjectId::parse(hint) {
            Some(id) => canopy_store::projects::get_project(store, cx.org(), id).await?,
            None => canopy_store::projects::get_project_by_slug(store, cx.org(), hint).await?,
        };
        let id = row
            .filter(|r| r.archived_at.is_none())
            .and_then(|r| ProjectId::from_db(&r.id));
        return match id {
            Some(id) if cx.principal.sees_project(id) => Ok(id),
            _ => Err(Error::not_found("Project").with_field("X-Canopy-Project")),
        };
    }
    if let Some(p) = cx.principal.project_id {
        return Ok(p);
    }
    // Remembered for at most a second (the server clears it every tick and on tenancy
    // changes), so an org-wide key's requests do not each look the project up again.
    if let Some(p) = cx.svc.default_project(cx.org()) {
        return Ok(p);
    }
    let row = canopy_store::projects::get_project_by_slug(store, cx.org(), "default").await?;
    let id = row
        .filter(|r| r.archived_at.is_none())
        .and_then(|r| ProjectId::from_db(&r.id));
    if let Some(p) = id {
        cx.svc.remember_default_project(cx.org(), p);
    }
    id.ok_or_else(|| {
        Error::new(
            canopy_core::Code::BadRequest,
            "This key is org-wide and the org has no project 'default'; name one with the X-Canopy-Project header.",
        )
    })
}

/// Who a write is attributed to: the agent named in the request, else the key.
pub fn author(cx: &Cx<'_>) -> String {
    cx.principal
        .agent
        .clone()
        .unwrap_or_else(|| cx.principal.key_id.to_string())
}

/// Cursor id marking a page of search results (paged by position, not by key).
const SEARCH_CURSOR: &str = "search";

/// Splits a list request's cursor: a search pages by position (the returned offset), any other
/// list by `(created_at, id)` (left in `page.after`). A cursor of the other kind is refused.
pub(crate) fn search_offset(searching: bool, page: &mut PageRequest) -> Result<i64, Error> {
    match (searching, page.after.take()) {
        (true, Some(c)) if c.id == SEARCH_CURSOR => Ok(c.t.max(0)),
        (false, Some(c)) if c.id != SEARCH_CURSOR => {
            page.after = Some(c);
            Ok(0)
        }
        (_, None) => Ok(0),
        _ => Err(Error::new(
            canopy_core::Code::InvalidCursor,
            "This cursor belongs to another query; start again without it.",
        )
        .with_field("cursor")),
    }
}

/// Points a search page's `next_cursor` at the following position.
pub(crate) fn set_search_cursor<T>(paged: &mut Paged<T>, offset: i64, page: &PageRequest) {
    if paged.pagination.has_more {
        let next = Cursor {
            t: offset + i64::from(page.limit),
            id: SEARCH_CURSOR.into(),
        };
        paged.pagination.next_cursor = Some(next.encode());
    }
}

const MAX_TAGS: usize = 50;

/// A tag list as stored: trimmed, lower-case, unique, sorted, as a JSON array.
pub(crate) fn tags_json(tags: &[String]) -> Result<String, Error> {
    if tags.len() > MAX_TAGS {
        return Err(Error::validation(
            "tags",
            format!("At most {MAX_TAGS} tags."),
        ));
    }
    let mut set = BTreeSet::new();
    for t in tags {
        let t = t.trim().to_lowercase();
        if t.is_empty() || t.chars().count() > 64 || t.contains(',') {
            return Err(Error::validation(
                "tags",
                "Each tag must be 1 to 64 characters, without commas.",
            ));
        }
        set.insert(t);
    }
    Ok(serde_json::to_string(&set.into_iter().collect::<Vec<_>>())?)
}

/// A comma-separated tag filter as a list.
pub(crate) fn tag_filter(raw: Option<&str>) -> Vec<String> {
    raw.map(|t| {
        t.split(',')
            .map(|x| x.trim().to_lowercase())
            .filter(|x| !x.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

/// A trimmed, non-empty search text.
pub(crate) fn search_text(raw: Option<&str>) -> Option<String> {
    raw.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}
