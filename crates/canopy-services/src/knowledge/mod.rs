//! Knowledge: what agents remember about a project (Minolith context; documents, changelog,
//! feedback and styleguide to follow). Every operation works inside the caller's project.

pub mod changelog;
pub mod context;
pub mod feedback;
pub mod styleguide;

use canopy_core::{Error, ProjectId};

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
    let row = canopy_store::projects::get_project_by_slug(store, cx.org(), "default").await?;
    row.and_then(|r| ProjectId::from_db(&r.id)).ok_or_else(|| {
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
