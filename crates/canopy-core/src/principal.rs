//! Who is calling: the authenticated key (directly or through a JWT minted from it).

use crate::{Error, KeyId, OrgId, ProjectId, Scope, Scopes};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    AccessKey,
    Jwt,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::AccessKey => "access_key",
            CredentialKind::Jwt => "jwt",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Principal {
    pub key_id: KeyId,
    pub org_id: OrgId,
    /// `None` for an org-wide key.
    pub project_id: Option<ProjectId>,
    pub scopes: Scopes,
    pub kind: CredentialKind,
    /// The agent named by `X-Minolith-Agent` / `X-Canopy-Agent`, once resolved.
    pub agent: Option<String>,
}

impl Principal {
    pub fn require(&self, needed: Scope) -> Result<(), Error> {
        if self.scopes.allows(needed) {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "This key lacks the '{needed}' scope needed here."
            )))
        }
    }

    /// Whether the caller may see `project` (org-wide keys see every project of their org).
    pub fn sees_project(&self, project: ProjectId) -> bool {
        self.project_id.is_none_or(|p| p == project)
    }
}
