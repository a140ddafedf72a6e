//! Knowledge: what agents remember about a project (Minolith context; documents, changelog,
//! feedback and styleguide to follow). Every operation works inside the caller's project.

pub mod changelog;
pub mod context;
pub mod feedback;

use canopy_core::{Error, ProjectId};

use crate::op::Cx;

/// The project an operation works in: the key's own project, or for an org-wide key the
/// org's `default` project.
pub async fn current_project(cx: &Cx<'_>) -> Result<ProjectId, Error> {
    if let Some(p) = cx.principal.project_id {
        return Ok(p);
    }
    let row =
        canopy_store::projects::get_project_by_slug(cx.svc.store(), cx.org(), "default").await?;
    row.and_then(|r| ProjectId::from_db(&r.id)).ok_or_else(|| {
        Error::new(
            canopy_core::Code::BadRequest,
            "This key is org-wide and the org has no project 'default'; use a key of the project you mean.",
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
