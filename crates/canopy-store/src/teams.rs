//! Team members, their roles per project, and invitations.

use canopy_core::Error;

use crate::{Backend, Store, Tx, db_error};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A member with their role in one project.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProjectMemberRow {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub role: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InviteRow {
    pub id: String,
    pub org_id: String,
    pub project_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub token_hash: String,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
    pub member_id: Option<String>,
    pub created_by: Option<String>,
    pub created_at: i64,
}

pub async fn upsert_member(tx: &mut Tx, m: &MemberRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO team_members (id, org_id, email, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at",
    )
    .bind(&m.id).bind(&m.org_id).bind(&m.email).bind(&m.name).bind(m.created_at).bind(m.updated_at)
    .execute(c).await.map(|_| ()))
    .map_err(db_error)
}

pub async fn member_by_email(
    tx: &mut Tx,
    org: &str,
    email: &str,
) -> Result<Option<MemberRow>, Error> {
    on_tx!(tx, c => sqlx::query_as("SELECT * FROM team_members WHERE org_id = $1 AND email = $2")
        .bind(org).bind(email).fetch_optional(c).await)
    .map_err(db_error)
}

pub async fn set_role(
    tx: &mut Tx,
    member: &str,
    project: &str,
    role: &str,
    now: i64,
) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO team_roles (member_id, project_id, role, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (member_id, project_id) DO UPDATE SET role = excluded.role",
    )
    .bind(member).bind(project).bind(role).bind(now)
    .execute(c).await.map(|_| ()))
    .map_err(db_error)
}

pub async fn remove_role(tx: &mut Tx, member: &str, project: &str) -> Result<bool, Error> {
    let n = on_tx!(tx, c => sqlx::query("DELETE FROM team_roles WHERE member_id = $1 AND project_id = $2")
        .bind(member).bind(project).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(n > 0)
}

const MEMBER_OF: &str =
    "SELECT m.*, r.role FROM team_members m JOIN team_roles r ON r.member_id = m.id";

pub async fn project_member(
    store: &Store,
    project: &str,
    member: &str,
) -> Result<Option<ProjectMemberRow>, Error> {
    let sql = format!("{MEMBER_OF} WHERE r.project_id = $1 AND m.id = $2");
    on_db!(store, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(project).bind(member).fetch_optional(c).await)
        .map_err(db_error)
}

/// A project's members by name (at most 500: teams are small).
pub async fn project_members(store: &Store, project: &str) -> Result<Vec<ProjectMemberRow>, Error> {
    let sql = format!("{MEMBER_OF} WHERE r.project_id = $1 ORDER BY m.name, m.id LIMIT 500");
    on_db!(store, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(project).fetch_all(c).await)
        .map_err(db_error)
}

/// Whether someone named `name` has a role in the project.
pub async fn named_in_project(
    store: &Store,
    org: &str,
    project: &str,
    name: &str,
) -> Result<bool, Error> {
    let n: i64 = on_db!(store, c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM team_members m JOIN team_roles r ON r.member_id = m.id \
         WHERE m.org_id = $1 AND r.project_id = $2 AND m.name = $3",
    )
    .bind(org).bind(project).bind(name).fetch_one(c).await)
    .map_err(db_error)?;
    Ok(n > 0)
}

pub async fn insert_invite(tx: &mut Tx, i: &InviteRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO team_invites (id, org_id, project_id, email, name, role, token_hash, expires_at, accepted_at, \
         member_id, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&i.id).bind(&i.org_id).bind(&i.project_id).bind(&i.email).bind(&i.name).bind(&i.role)
    .bind(&i.token_hash).bind(i.expires_at).bind(i.accepted_at).bind(&i.member_id).bind(&i.created_by)
    .bind(i.created_at)
    .execute(c).await.map(|_| ()))
    .map_err(db_error)
}

/// The invitation with this token hash, locked for accepting on PostgreSQL.
pub async fn invite_by_hash_tx(tx: &mut Tx, hash: &str) -> Result<Option<InviteRow>, Error> {
    let sql = if tx.backend() == Backend::Postgres {
        "SELECT * FROM team_invites WHERE token_hash = $1 FOR UPDATE"
    } else {
        "SELECT * FROM team_invites WHERE token_hash = $1"
    };
    on_tx!(tx, c => sqlx::query_as(sql).bind(hash).fetch_optional(c).await).map_err(db_error)
}

/// Marks an invitation used; false when another accept got there first.
pub async fn mark_accepted(tx: &mut Tx, id: &str, member: &str, now: i64) -> Result<bool, Error> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE team_invites SET accepted_at = $1, member_id = $2 WHERE id = $3 AND accepted_at IS NULL",
    )
    .bind(now).bind(member).bind(id).execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(n > 0)
}
