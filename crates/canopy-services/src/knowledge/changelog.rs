//! Changelog: entries (3 credits each) grouped into versions, drafts until published, and the
//! public page and RSS feed of published entries.

use canopy_core::suggest::parse_enum;
use canopy_core::{
    ChangelogEntryId as EntId, ChangelogVersionId as VerId, Data, Deleted, Error, PageRequest,
    Paged, ProjectId, Scope,
};
use canopy_store::changelog::{
    EntryFilter, EntryRow, VersionRow, delete_entry, delete_version, get_entry, get_entry_tx,
    get_version, get_version_tx, list_entries, list_versions, publish_version_entries,
    published_entries, published_versions, upsert_entry, upsert_version, version_entries,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Services;
use crate::knowledge::{author, current_project};
use crate::op::{Cx, Hints, Operation};

pub const CATEGORIES: &[&str] = &[
    "added",
    "changed",
    "fixed",
    "removed",
    "security",
    "deprecated",
];
const STATUSES: &[&str] = &["draft", "published"];

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ChangelogEntry {
    /// `ent_…`
    pub id: String,
    pub title: String,
    /// Markdown.
    pub body: String,
    /// added, changed, fixed, removed, security or deprecated.
    pub category: String,
    /// `draft` or `published`.
    pub status: String,
    pub version_id: Option<String>,
    pub published_at: Option<String>,
    pub created_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl ChangelogEntry {
    fn from_row(r: &EntryRow) -> ChangelogEntry {
        ChangelogEntry {
            id: EntId::show(&r.id),
            title: r.title.clone(),
            body: r.body.clone(),
            category: r.category.clone(),
            status: r.status.clone(),
            version_id: r.version_id.as_deref().map(VerId::show),
            published_at: r.published_at.map(canopy_core::time::rfc3339),
            created_by: r.created_by.clone(),
            created_at: canopy_core::time::rfc3339(r.created_at),
            updated_at: canopy_core::time::rfc3339(r.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ChangelogVersion {
    /// `ver_…`
    pub id: String,
    /// e.g. `2.4.0`
    pub name: String,
    pub description: String,
    /// `draft` or `published`.
    pub status: String,
    pub released_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The version's entries (on a single read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<ChangelogEntry>>,
}

impl ChangelogVersion {
    fn from_row(r: &VersionRow) -> ChangelogVersion {
        ChangelogVersion {
            id: VerId::show(&r.id),
            name: r.name.clone(),
            description: r.description.clone(),
            status: r.status.clone(),
            released_at: r.released_at.map(canopy_core::time::rfc3339),
            created_at: canopy_core::time::rfc3339(r.created_at),
            updated_at: canopy_core::time::rfc3339(r.updated_at),
            entries: None,
        }
    }
}

fn title_ok(t: &str) -> Result<String, Error> {
    let t = t.trim();
    if t.is_empty() || t.chars().count() > 300 {
        return Err(Error::validation(
            "title",
            "title must be 1 to 300 characters.",
        ));
    }
    Ok(t.to_owned())
}

fn body_ok(b: &str) -> Result<String, Error> {
    if b.chars().count() > 100_000 {
        return Err(Error::validation(
            "body",
            "body must be at most 100,000 characters.",
        ));
    }
    Ok(b.to_owned())
}

fn entry_not_found() -> Error {
    Error::not_found("Changelog entry")
}

fn version_not_found() -> Error {
    Error::not_found("Changelog version")
}

fn entry_db(raw: &str) -> Result<String, Error> {
    EntId::parse(raw)
        .map(|i| i.db())
        .ok_or_else(entry_not_found)
}

fn version_db(raw: &str) -> Result<String, Error> {
    VerId::parse(raw)
        .map(|i| i.db())
        .ok_or_else(version_not_found)
}

/// A version id given in input: must be a version of this project.
async fn check_version(
    tx: &mut canopy_store::Tx,
    project: ProjectId,
    raw: &str,
) -> Result<String, Error> {
    let id = version_db(raw).map_err(|e| e.with_field("version_id"))?;
    get_version_tx(tx, project, &id)
        .await?
        .ok_or_else(|| version_not_found().with_field("version_id"))?;
    Ok(id)
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateEntryInput {
    /// 1–300 chars.
    pub title: String,
    /// Markdown, up to 100,000 chars.
    #[serde(default)]
    pub body: String,
    /// added, changed, fixed, removed, security or deprecated.
    pub category: String,
    pub version_id: Option<String>,
    /// `draft` (default) or `published`.
    pub status: Option<String>,
}

pub struct CreateChangelogEntry;
impl Operation for CreateChangelogEntry {
    const NAME: &'static str = "create_changelog_entry";
    const SUMMARY: &'static str = "Write a changelog entry.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::WRITE;
    const CREDITS: u32 = 3;
    type Input = CreateEntryInput;
    type Output = Data<ChangelogEntry>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let category = parse_enum(&i.category, "category", CATEGORIES)?;
        let status = parse_enum(i.status.as_deref().unwrap_or("draft"), "status", STATUSES)?;
        let now = canopy_core::time::now_ms();
        let mut tx = cx.svc.store().begin().await?;
        let version_id = match &i.version_id {
            Some(v) => Some(check_version(&mut tx, project, v).await?),
            None => None,
        };
        let row = EntryRow {
            id: EntId::new().db(),
            org_id: cx.org().db(),
            project_id: project.db(),
            version_id,
            title: title_ok(&i.title)?,
            body: body_ok(&i.body)?,
            category: category.into(),
            status: status.into(),
            published_at: (status == "published").then_some(now),
            created_by: Some(author(cx)),
            created_at: now,
            updated_at: now,
        };
        crate::governance::quotas::check(
            &mut tx,
            cx,
            project,
            canopy_store::projects::Counted::ChangelogEntries,
            1,
        )
        .await?;
        upsert_entry(&mut tx, &row).await?;
        let e = ChangelogEntry::from_row(&row);
        cx.commit(tx, Some(project), e.id.clone(), None).await?;
        Ok(Data { data: e })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListEntriesInput {
    pub status: Option<String>,
    pub category: Option<String>,
    pub version_id: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub struct ListChangelogEntries;
impl Operation for ListChangelogEntries {
    const NAME: &'static str = "list_changelog_entries";
    const SUMMARY: &'static str = "List changelog entries, newest first.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = ListEntriesInput;
    type Output = Paged<ChangelogEntry>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let page = PageRequest::new(i.limit, i.cursor.as_deref())?;
        let f = EntryFilter {
            status: i
                .status
                .as_deref()
                .map(|s| parse_enum(s, "status", STATUSES))
                .transpose()?
                .map(str::to_owned),
            category: i
                .category
                .as_deref()
                .map(|s| parse_enum(s, "category", CATEGORIES))
                .transpose()?
                .map(str::to_owned),
            version_id: i.version_id.as_deref().map(version_db).transpose()?,
        };
        let rows = list_entries(cx.svc.store(), project, &f, &page).await?;
        Paged::try_from_rows(
            rows,
            &page,
            |r| (r.created_at, &r.id),
            |r| Ok::<_, Error>(ChangelogEntry::from_row(&r)),
        )
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct IdInput {
    pub id: String,
}

pub struct GetChangelogEntry;
impl Operation for GetChangelogEntry {
    const NAME: &'static str = "get_changelog_entry";
    const SUMMARY: &'static str = "Read one changelog entry.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = IdInput;
    type Output = Data<ChangelogEntry>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let row = get_entry(cx.svc.store(), project, &entry_db(&i.id)?)
            .await?
            .ok_or_else(entry_not_found)?;
        Ok(Data {
            data: ChangelogEntry::from_row(&row),
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateEntryInput {
    pub id: String,
    pub title: Option<String>,
    pub body: Option<String>,
    pub category: Option<String>,
    /// `ver_…`; an empty string detaches it.
    pub version_id: Option<String>,
}

pub struct UpdateChangelogEntry;
impl Operation for UpdateChangelogEntry {
    const NAME: &'static str = "update_changelog_entry";
    const SUMMARY: &'static str = "Change a changelog entry.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::UPDATE;
    type Input = UpdateEntryInput;
    type Output = Data<ChangelogEntry>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let mut tx = cx.svc.store().begin().await?;
        let mut row = get_entry_tx(&mut tx, project, &entry_db(&i.id)?)
            .await?
            .ok_or_else(entry_not_found)?;
        if let Some(t) = &i.title {
            row.title = title_ok(t)?;
        }
        if let Some(b) = &i.body {
            row.body = body_ok(b)?;
        }
        if let Some(c) = &i.category {
            row.category = parse_enum(c, "category", CATEGORIES)?.into();
        }
        match i.version_id.as_deref() {
            Some("") => row.version_id = None,
            Some(v) => row.version_id = Some(check_version(&mut tx, project, v).await?),
            None => {}
        }
        row.updated_at = canopy_core::time::now_ms();
        upsert_entry(&mut tx, &row).await?;
        let e = ChangelogEntry::from_row(&row);
        cx.commit(tx, Some(project), e.id.clone(), None).await?;
        Ok(Data { data: e })
    }
}

pub struct DeleteChangelogEntry;
impl Operation for DeleteChangelogEntry {
    const NAME: &'static str = "delete_changelog_entry";
    const SUMMARY: &'static str = "Delete a changelog entry.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::DESTROY;
    type Input = IdInput;
    type Output = Data<Deleted>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let id = entry_db(&i.id)?;
        let mut tx = cx.svc.store().begin().await?;
        if !delete_entry(&mut tx, project, &id).await? {
            return Err(entry_not_found());
        }
        let s = EntId::show(&id);
        cx.commit_deleted(tx, project, s).await
    }
}

pub struct PublishChangelogEntry;
impl Operation for PublishChangelogEntry {
    const NAME: &'static str = "publish_changelog_entry";
    const SUMMARY: &'static str = "Publish a changelog entry to the public page and feed.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::UPDATE;
    type Input = IdInput;
    type Output = Data<ChangelogEntry>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let mut tx = cx.svc.store().begin().await?;
        let mut row = get_entry_tx(&mut tx, project, &entry_db(&i.id)?)
            .await?
            .ok_or_else(entry_not_found)?;
        if row.status != "published" {
            let now = canopy_core::time::now_ms();
            row.status = "published".into();
            row.published_at = Some(now);
            row.updated_at = now;
            upsert_entry(&mut tx, &row).await?;
        }
        let e = ChangelogEntry::from_row(&row);
        cx.commit(tx, Some(project), e.id.clone(), None).await?;
        Ok(Data { data: e })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateVersionInput {
    /// Unique, e.g. `2.4.0`.
    pub name: String,
    #[serde(default)]
    pub description: String,
}

fn version_name_ok(n: &str) -> Result<String, Error> {
    let n = n.trim();
    if n.is_empty() || n.chars().count() > 100 {
        return Err(Error::validation(
            "name",
            "name must be 1 to 100 characters.",
        ));
    }
    Ok(n.to_owned())
}

fn version_conflict(e: Error, name: &str) -> Error {
    if e.code == canopy_core::Code::Conflict {
        Error::conflict(format!("A version named '{name}' exists.")).with_field("name")
    } else {
        e
    }
}

pub struct CreateChangelogVersion;
impl Operation for CreateChangelogVersion {
    const NAME: &'static str = "create_changelog_version";
    const SUMMARY: &'static str = "Create a changelog version (a draft) to group entries.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::WRITE;
    type Input = CreateVersionInput;
    type Output = Data<ChangelogVersion>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let now = canopy_core::time::now_ms();
        let row = VersionRow {
            id: VerId::new().db(),
            org_id: cx.org().db(),
            project_id: project.db(),
            name: version_name_ok(&i.name)?,
            description: body_ok(&i.description).map_err(|e| e.with_field("description"))?,
            status: "draft".into(),
            released_at: None,
            created_at: now,
            updated_at: now,
        };
        let mut tx = cx.svc.store().begin().await?;
        upsert_version(&mut tx, &row)
            .await
            .map_err(|e| version_conflict(e, &row.name))?;
        let v = ChangelogVersion::from_row(&row);
        cx.commit(tx, Some(project), v.id.clone(), None).await?;
        Ok(Data { data: v })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListVersionsInput {
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub struct ListChangelogVersions;
impl Operation for ListChangelogVersions {
    const NAME: &'static str = "list_changelog_versions";
    const SUMMARY: &'static str = "List changelog versions, newest first.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = ListVersionsInput;
    type Output = Paged<ChangelogVersion>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let page = PageRequest::new(i.limit, i.cursor.as_deref())?;
        let status = i
            .status
            .as_deref()
            .map(|s| parse_enum(s, "status", STATUSES))
            .transpose()?;
        let rows = list_versions(cx.svc.store(), project, status, &page).await?;
        Paged::try_from_rows(
            rows,
            &page,
            |r| (r.created_at, &r.id),
            |r| Ok::<_, Error>(ChangelogVersion::from_row(&r)),
        )
    }
}

pub struct GetChangelogVersion;
impl Operation for GetChangelogVersion {
    const NAME: &'static str = "get_changelog_version";
    const SUMMARY: &'static str = "Read a changelog version with its entries.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = IdInput;
    type Output = Data<ChangelogVersion>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let id = version_db(&i.id)?;
        let row = get_version(cx.svc.store(), project, &id)
            .await?
            .ok_or_else(version_not_found)?;
        let mut v = ChangelogVersion::from_row(&row);
        v.entries = Some(
            version_entries(cx.svc.store(), project, &id)
                .await?
                .iter()
                .map(ChangelogEntry::from_row)
                .collect(),
        );
        Ok(Data { data: v })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateVersionInput {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
}

pub struct UpdateChangelogVersion;
impl Operation for UpdateChangelogVersion {
    const NAME: &'static str = "update_changelog_version";
    const SUMMARY: &'static str = "Rename or describe a changelog version.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::UPDATE;
    type Input = UpdateVersionInput;
    type Output = Data<ChangelogVersion>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let mut tx = cx.svc.store().begin().await?;
        let mut row = get_version_tx(&mut tx, project, &version_db(&i.id)?)
            .await?
            .ok_or_else(version_not_found)?;
        if let Some(n) = &i.name {
            row.name = version_name_ok(n)?;
        }
        if let Some(d) = &i.description {
            row.description = body_ok(d).map_err(|e| e.with_field("description"))?;
        }
        row.updated_at = canopy_core::time::now_ms();
        upsert_version(&mut tx, &row)
            .await
            .map_err(|e| version_conflict(e, &row.name))?;
        let v = ChangelogVersion::from_row(&row);
        cx.commit(tx, Some(project), v.id.clone(), None).await?;
        Ok(Data { data: v })
    }
}

pub struct DeleteChangelogVersion;
impl Operation for DeleteChangelogVersion {
    const NAME: &'static str = "delete_changelog_version";
    const SUMMARY: &'static str =
        "Delete a changelog version; its entries stay, without a version.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::DESTROY;
    type Input = IdInput;
    type Output = Data<Deleted>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let id = version_db(&i.id)?;
        let mut tx = cx.svc.store().begin().await?;
        if !delete_version(&mut tx, project, &id).await? {
            return Err(version_not_found());
        }
        let s = VerId::show(&id);
        cx.commit_deleted(tx, project, s).await
    }
}

pub struct PublishChangelogVersion;
impl Operation for PublishChangelogVersion {
    const NAME: &'static str = "publish_changelog_version";
    const SUMMARY: &'static str = "Release a version: it and all its entries are published.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::UPDATE;
    type Input = IdInput;
    type Output = Data<ChangelogVersion>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let id = version_db(&i.id)?;
        let now = canopy_core::time::now_ms();
        let mut tx = cx.svc.store().begin().await?;
        let mut row = get_version_tx(&mut tx, project, &id)
            .await?
            .ok_or_else(version_not_found)?;
        if row.status != "published" {
            row.status = "published".into();
            row.released_at = Some(now);
            row.updated_at = now;
            upsert_version(&mut tx, &row).await?;
        }
        let n = publish_version_entries(&mut tx, project, &id, now).await?;
        let v = ChangelogVersion::from_row(&row);
        cx.commit(
            tx,
            Some(project),
            v.id.clone(),
            Some(serde_json::json!({"entries_published": n})),
        )
        .await?;
        let mut v = v;
        v.entries = Some(
            version_entries(cx.svc.store(), project, &id)
                .await?
                .iter()
                .map(ChangelogEntry::from_row)
                .collect(),
        );
        Ok(Data { data: v })
    }
}

/// What the public page and feed show: published entries only.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct PublicChangelog {
    pub project: PublicProject,
    pub entries: Vec<PublicEntry>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct PublicProject {
    pub name: String,
    pub slug: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct PublicEntry {
    pub id: String,
    pub title: String,
    pub body: String,
    pub category: String,
    /// The published version's name, if the entry has one.
    pub version: Option<String>,
    pub published_at: String,
    /// Unix milliseconds, for feeds.
    #[serde(skip)]
    pub published_ms: i64,
}

impl Services {
    /// The public changelog of a project named by slug or id (no key; published items only).
    pub async fn public_changelog(&self, project: &str) -> Result<PublicChangelog, Error> {
        let row = canopy_store::projects::find_public_project(self.store(), project)
            .await?
            .ok_or_else(|| Error::not_found("Changelog"))?;
        let pid = ProjectId::from_db(&row.id).ok_or_else(|| Error::internal("bad project id"))?;
        let versions = published_versions(self.store(), pid).await?;
        let entries = published_entries(self.store(), pid, 200).await?;
        Ok(PublicChangelog {
            project: PublicProject {
                name: row.name,
                slug: row.slug,
            },
            entries: entries
                .iter()
                .map(|e| {
                    let at = e.published_at.unwrap_or(e.created_at);
                    PublicEntry {
                        id: EntId::show(&e.id),
                        title: e.title.clone(),
                        body: e.body.clone(),
                        category: e.category.clone(),
                        version: e
                            .version_id
                            .as_ref()
                            .and_then(|v| versions.iter().find(|x| &x.id == v))
                            .map(|v| v.name.clone()),
                        published_at: canopy_core::time::rfc3339(at),
                        published_ms: at,
                    }
                })
                .collect(),
        })
    }
}
