//! Teams: people (email, name) with a role per project, added directly or invited by a
//! one-time token. Accepting an invitation answers the member's own API key for the project,
//! with scopes that follow the role. Tasks can be assigned to members by name.

use canopy_core::suggest::parse_enum;
use canopy_core::{
    Code, Data, Deleted, Error, InviteId, KeyId, MemberId, ProjectId, Scope, Scopes,
};
use canopy_store::Store;
use canopy_store::teams::{
    InviteRow, MemberRow, ProjectMemberRow, insert_invite, invite_by_hash_tx, mark_accepted,
    member_by_email, named_in_project, project_member, project_members, remove_role, set_role,
    upsert_member,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Services;
use crate::crypto::{generate_key, hash_key};
use crate::knowledge::current_project;
use crate::op::{Cx, Hints, Operation};

pub const ROLES: &[&str] = &["owner", "admin", "member", "viewer"];
/// How long an invitation can be accepted.
const INVITE_TTL_MS: i64 = 7 * 86_400_000;
const INVITE_PREFIX: &str = "inv_tok_";

/// What a member's key may do, by role.
pub fn role_scopes(role: &str) -> Scopes {
    let base = Scopes::empty().with(Scope::Read).with(Scope::Mcp);
    match role {
        "owner" | "admin" => base.with(Scope::Write).with(Scope::Admin),
        "member" => base.with(Scope::Write),
        _ => base,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Member {
    /// `mbr_…`
    pub id: String,
    pub object: String,
    pub email: String,
    pub name: String,
    /// The member's role in this project: owner, admin, member or viewer.
    pub role: String,
    pub created_at: String,
}

fn member(r: ProjectMemberRow) -> Member {
    Member {
        id: MemberId::show(&r.id),
        object: "team_member".into(),
        email: r.email,
        name: r.name,
        role: r.role,
        created_at: canopy_core::time::rfc3339(r.created_at),
    }
}

/// Whether a member named `name` has a role in the project (task assignment).
pub async fn member_in_project(
    store: &Store,
    org: canopy_core::OrgId,
    project: ProjectId,
    name: &str,
) -> Result<bool, Error> {
    named_in_project(store, &org.db(), &project.db(), name).await
}

fn check_email(e: &str) -> Result<String, Error> {
    let e = e.trim().to_lowercase();
    let ok = e.len() <= 320
        && e.split_once('@')
            .is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !b.starts_with('.'));
    if !ok {
        return Err(Error::validation(
            "email",
            "email must be an email address.",
        ));
    }
    Ok(e)
}

/// Adds (or re-roles) a member of the org by email in `project`; answers the member row.
async fn add_to_project(
    tx: &mut canopy_store::Tx,
    org: &str,
    project: &str,
    email: &str,
    name: &str,
    role: &str,
    now: i64,
) -> Result<MemberRow, Error> {
    let row = match member_by_email(tx, org, email).await? {
        Some(m) => m,
        None => {
            let m = MemberRow {
                id: MemberId::new().db(),
                org_id: org.to_owned(),
                email: email.to_owned(),
                name: name.to_owned(),
                created_at: now,
                updated_at: now,
            };
            upsert_member(tx, &m).await?;
            m
        }
    };
    set_role(tx, &row.id, project, role, now).await?;
    Ok(row)
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AddMemberInput {
    pub email: String,
    pub name: String,
    /// owner, admin, member (default) or viewer.
    pub role: Option<String>,
}

pub struct AddMember;
impl Operation for AddMember {
    const NAME: &'static str = "add_team_member";
    const SUMMARY: &'static str =
        "Give a person (email, name) a role in the project, without a key (invite to give one).";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::WRITE;
    type Input = AddMemberInput;
    type Output = Data<Member>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let role = parse_enum(i.role.as_deref().unwrap_or("member"), "role", ROLES)?;
        let (email, name) = (
            check_email(&i.email)?,
            super::fields::required_text("name", &i.name, 200)?,
        );
        let now = canopy_core::time::now_ms();
        let mut tx = cx.svc.store().begin().await?;
        let m = add_to_project(
            &mut tx,
            &cx.org().db(),
            &project.db(),
            &email,
            &name,
            role,
            now,
        )
        .await?;
        let out = member(ProjectMemberRow {
            id: m.id,
            org_id: m.org_id,
            email: m.email,
            name: m.name,
            created_at: m.created_at,
            updated_at: m.updated_at,
            role: role.to_owned(),
        });
        cx.commit(tx, Some(project), out.id.clone(), None).await?;
        Ok(Data { data: out })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct NoInput {}

pub struct ListMembers;
impl Operation for ListMembers {
    const NAME: &'static str = "list_team_members";
    const SUMMARY: &'static str = "The project's team members with their roles, by name.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = NoInput;
    type Output = Data<Vec<Member>>;

    async fn call(cx: &Cx<'_>, _i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let rows = project_members(cx.svc.store(), &project.db()).await?;
        Ok(Data {
            data: rows.into_iter().map(member).collect(),
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateMemberInput {
    pub id: String,
    pub role: Option<String>,
    pub name: Option<String>,
}

fn member_not_found() -> Error {
    Error::not_found("Team member")
}

async fn visible_member(
    cx: &Cx<'_>,
    project: ProjectId,
    raw: &str,
) -> Result<ProjectMemberRow, Error> {
    let id = MemberId::parse(raw).ok_or_else(member_not_found)?;
    project_member(cx.svc.store(), &project.db(), &id.db())
        .await?
        .filter(|m| m.org_id == cx.org().db())
        .ok_or_else(member_not_found)
}

pub struct UpdateMember;
impl Operation for UpdateMember {
    const NAME: &'static str = "update_team_member";
    const SUMMARY: &'static str = "Change a member's role in the project, or their name.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::UPDATE;
    type Input = UpdateMemberInput;
    type Output = Data<Member>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let mut m = visible_member(cx, project, &i.id).await?;
        let now = canopy_core::time::now_ms();
        let mut tx = cx.svc.store().begin().await?;
        if let Some(r) = &i.role {
            m.role = parse_enum(r, "role", ROLES)?.to_owned();
            set_role(&mut tx, &m.id, &project.db(), &m.role, now).await?;
        }
        if let Some(n) = &i.name {
            m.name = super::fields::required_text("name", n, 200)?;
            m.updated_at = now;
            let row = MemberRow {
                id: m.id.clone(),
                org_id: m.org_id.clone(),
                email: m.email.clone(),
                name: m.name.clone(),
                created_at: m.created_at,
                updated_at: now,
            };
            upsert_member(&mut tx, &row).await?;
        }
        let out = member(m);
        cx.commit(tx, Some(project), out.id.clone(), None).await?;
        Ok(Data { data: out })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct MemberIdInput {
    pub id: String,
}

pub struct RemoveMember;
impl Operation for RemoveMember {
    const NAME: &'static str = "remove_team_member";
    const SUMMARY: &'static str =
        "Take a member's role in the project away (their keys are not revoked here).";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::DESTROY;
    type Input = MemberIdInput;
    type Output = Data<Deleted>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let m = visible_member(cx, project, &i.id).await?;
        let mut tx = cx.svc.store().begin().await?;
        remove_role(&mut tx, &m.id, &project.db()).await?;
        cx.commit_deleted(tx, project, MemberId::show(&m.id)).await
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct InviteInput {
    pub email: String,
    pub name: String,
    /// owner, admin, member (default) or viewer: what the key made on accepting may do.
    pub role: Option<String>,
}

/// An invitation; `token` only in the answer that creates it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Invite {
    /// `inv_…`
    pub id: String,
    pub object: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub project_id: String,
    pub expires_at: String,
    /// The one-time token: `POST /v1/team/invites/{token}/accept`. Shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

pub struct CreateInvite;
impl Operation for CreateInvite {
    const NAME: &'static str = "invite_team_member";
    const SUMMARY: &'static str = "Invite a person to the project; answers a one-time token that, accepted, gives them a key.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::WRITE;
    type Input = InviteInput;
    type Output = Data<Invite>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let role = parse_enum(i.role.as_deref().unwrap_or("member"), "role", ROLES)?;
        // An invitation cannot hand out more than its author may do.
        if !cx.principal.scopes.covers(role_scopes(role)) {
            return Err(
                Error::forbidden("This key cannot invite with that role.").with_field("role")
            );
        }
        let token = generate_key(INVITE_PREFIX);
        let now = canopy_core::time::now_ms();
        let row = InviteRow {
            id: InviteId::new().db(),
            org_id: cx.org().db(),
            project_id: project.db(),
            email: check_email(&i.email)?,
            name: super::fields::required_text("name", &i.name, 200)?,
            role: role.to_owned(),
            token_hash: hash_key(&token),
            expires_at: now + INVITE_TTL_MS,
            accepted_at: None,
            member_id: None,
            created_by: Some(cx.principal.key_id.db()),
            created_at: now,
        };
        let mut tx = cx.svc.store().begin().await?;
        insert_invite(&mut tx, &row).await?;
        let out = Invite {
            id: InviteId::show(&row.id),
            object: "team_invite".into(),
            email: row.email,
            name: row.name,
            role: row.role,
            project_id: project.to_string(),
            expires_at: canopy_core::time::rfc3339(row.expires_at),
            token: Some(token),
        };
        cx.commit(tx, Some(project), out.id.clone(), None).await?;
        Ok(Data { data: out })
    }
}

/// What accepting an invitation answers: the member and their key (shown once).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Accepted {
    pub member: Member,
    /// The member's API key for the project. Shown once; keep it.
    pub key: String,
    pub key_id: String,
    pub project_id: String,
    pub scopes: Vec<String>,
}

/// Accepts an invitation by its token (no other credential: the token is one). Used once;
/// expired or used tokens answer 404 / 409 and change nothing.
pub async fn accept_invite(svc: &Services, token: &str) -> Result<Accepted, Error> {
    let not_found = || Error::not_found("Invitation");
    if !token.starts_with(INVITE_PREFIX) || token.len() > 200 {
        return Err(not_found());
    }
    let now = canopy_core::time::now_ms();
    let mut tx = svc.store().begin().await?;
    let inv = invite_by_hash_tx(&mut tx, &hash_key(token))
        .await?
        .ok_or_else(not_found)?;
    if inv.accepted_at.is_some() {
        return Err(Error::new(
            Code::Conflict,
            "This invitation was already accepted.",
        ));
    }
    if inv.expires_at <= now {
        return Err(Error::new(
            Code::Conflict,
            "This invitation has expired; ask for a new one.",
        ));
    }
    let m = add_to_project(
        &mut tx,
        &inv.org_id,
        &inv.project_id,
        &inv.email,
        &inv.name,
        &inv.role,
        now,
    )
    .await?;
    if !mark_accepted(&mut tx, &inv.id, &m.id, now).await? {
        return Err(Error::new(
            Code::Conflict,
            "This invitation was already accepted.",
        ));
    }
    let org =
        canopy_core::OrgId::from_db(&inv.org_id).ok_or_else(|| Error::internal("bad org id"))?;
    let project =
        ProjectId::from_db(&inv.project_id).ok_or_else(|| Error::internal("bad project id"))?;
    let scopes = role_scopes(&inv.role);
    let new = crate::tenancy::NewKey {
        org,
        project: Some(project),
        name: format!("{} ({})", inv.name, inv.role),
        scopes,
        prefix: crate::tenancy::ACCESS_KEY_PREFIX,
        user_id: Some(MemberId::show(&m.id)),
        email: Some(inv.email.clone()),
        plan: None,
        mcp_tools: Vec::new(),
        rate_limit: None,
        expires_at: None,
        created_by: None,
    };
    let (key_row, secret) = crate::tenancy::mint_key(&mut tx, &new).await?;
    let audit = crate::tenancy::system_audit(
        org,
        Some(project),
        "accept_team_invite",
        Some(InviteId::show(&inv.id)),
    );
    canopy_store::audit::insert_audit(&mut tx, &audit).await?;
    tx.commit().await?;
    Ok(Accepted {
        member: member(ProjectMemberRow {
            id: m.id,
            org_id: m.org_id,
            email: m.email,
            name: m.name,
            created_at: m.created_at,
            updated_at: m.updated_at,
            role: inv.role,
        }),
        key: secret,
        key_id: KeyId::show(&key_row.id),
        project_id: project.to_string(),
        scopes: scopes.names().into_iter().map(str::to_owned).collect(),
    })
}
