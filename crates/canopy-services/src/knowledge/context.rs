//! Context: typed, tagged, searchable entries that persist between agent sessions, and an
//! immutable event log (entries of type `event`). All of Context is free of credits.

use canopy_core::suggest::parse_enum;
use canopy_core::{ContextId, Cursor, Data, Deleted, Error, PageRequest, Paged, ProjectId, Scope};
use canopy_store::context::{
    ContextFilter, ContextRow, ValueColumn, delete_entry, get_entry, get_entry_tx, insert_entries,
    insert_entry, list_entries, update_entry, value_counts,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::knowledge::{
    author, current_project, search_offset, search_text, set_search_cursor, tag_filter, tags_json,
};
use crate::op::{Cx, Hints, Operation};

pub const TYPES: &[&str] = &[
    "rule",
    "pattern",
    "snippet",
    "decision",
    "fact",
    "warning",
    "event",
    "brief",
    "bug",
    "todo",
    "dependency",
    "config",
    "workaround",
    "workflow",
    "persona",
    "reference",
    "preference",
    "test",
    "glossary",
];
pub const PRIORITIES: &[&str] = &["high", "normal", "low"];
const MAX_BULK: usize = 100;
const MAX_TITLE: usize = 500;
const MAX_BODY: usize = 100_000;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ContextEntry {
    /// `ctx_…`
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub scope: String,
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    /// `high`, `normal` or `low`.
    pub priority: String,
    /// The agent or key that wrote it.
    pub created_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl ContextEntry {
    pub(crate) fn from_row(r: &ContextRow) -> ContextEntry {
        ContextEntry {
            id: ContextId::show(&r.id),
            kind: r.kind.clone(),
            scope: r.scope.clone(),
            title: r.title.clone(),
            body: r.body.clone(),
            tags: serde_json::from_str(&r.tags).unwrap_or_default(),
            priority: r.priority.clone(),
            created_by: r.created_by.clone(),
            created_at: canopy_core::time::rfc3339(r.created_at),
            updated_at: canopy_core::time::rfc3339(r.updated_at),
        }
    }
}

/// The fields of a new entry.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct NewEntry {
    /// rule, pattern, snippet, decision, fact, warning, event, brief, bug, todo, dependency,
    /// config, workaround, workflow, persona, reference, preference, test or glossary.
    #[serde(rename = "type")]
    pub kind: String,
    /// 1–500 chars.
    pub title: String,
    /// Up to 100,000 chars.
    pub body: String,
    /// Free text, e.g. `backend`; default `global`.
    pub scope: Option<String>,
    /// Up to 50; stored lower-case.
    pub tags: Option<Vec<String>>,
    /// `high`, `normal` (default) or `low`.
    pub priority: Option<String>,
}

/// Changes to an entry; omitted fields stay as they are.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct EntryChanges {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub title: Option<String>,
    pub body: Option<String>,
    pub scope: Option<String>,
    /// Replaces the whole tag list.
    pub tags: Option<Vec<String>>,
    pub priority: Option<String>,
}

fn prefixed(field: &str, e: Error, at: Option<usize>) -> Error {
    match at {
        None => e,
        Some(i) => {
            let inner = e.field.clone().unwrap_or_default();
            let mut e = e;
            e.field = Some(format!("{field}[{i}].{inner}"));
            e
        }
    }
}

fn check_title(t: &str) -> Result<String, Error> {
    let t = t.trim();
    if t.is_empty() || t.chars().count() > MAX_TITLE {
        return Err(Error::validation(
            "title",
            format!("title must be 1 to {MAX_TITLE} characters."),
        ));
    }
    Ok(t.to_owned())
}

fn check_body(b: &str) -> Result<String, Error> {
    if b.chars().count() > MAX_BODY {
        return Err(Error::validation(
            "body",
            format!("body must be at most {MAX_BODY} characters."),
        ));
    }
    Ok(b.to_owned())
}

fn check_scope(s: Option<&str>) -> Result<String, Error> {
    let s = s.map(str::trim).unwrap_or("global");
    if s.is_empty() || s.chars().count() > 100 {
        return Err(Error::validation(
            "scope",
            "scope must be 1 to 100 characters.",
        ));
    }
    Ok(s.to_owned())
}

/// Validates a new entry into a row (not yet written).
fn new_row(cx: &Cx<'_>, project: ProjectId, e: &NewEntry) -> Result<ContextRow, Error> {
    let kind = parse_enum(&e.kind, "type", TYPES)?;
    let priority = match &e.priority {
        Some(p) => parse_enum(p, "priority", PRIORITIES)?,
        None => "normal",
    };
    let now = canopy_core::time::now_ms();
    Ok(ContextRow {
        id: ContextId::new().db(),
        org_id: cx.org().db(),
        project_id: project.db(),
        kind: kind.to_owned(),
        scope: check_scope(e.scope.as_deref())?,
        title: check_title(&e.title)?,
        body: check_body(&e.body)?,
        tags: tags_json(e.tags.as_deref().unwrap_or_default())?,
        priority: priority.to_owned(),
        created_by: Some(author(cx)),
        created_at: now,
        updated_at: now,
    })
}

/// Applies changes to a current row; events refuse every change.
fn changed_row(mut row: ContextRow, c: &EntryChanges) -> Result<ContextRow, Error> {
    if row.kind == "event" {
        return Err(Error::new(
            canopy_core::Code::ImmutableEntry,
            "Events are immutable; log a new event instead.",
        ));
    }
    if let Some(k) = &c.kind {
        let k = parse_enum(k, "type", TYPES)?;
        if k == "event" {
            return Err(Error::validation(
                "type",
                "An entry cannot become an event; log an event with POST /v1/context/events.",
            ));
        }
        row.kind = k.to_owned();
    }
    if let Some(t) = &c.title {
        row.title = check_title(t)?;
    }
    if let Some(b) = &c.body {
        row.body = check_body(b)?;
    }
    if c.scope.is_some() {
        row.scope = check_scope(c.scope.as_deref())?;
    }
    if let Some(t) = &c.tags {
        row.tags = tags_json(t)?;
    }
    if let Some(p) = &c.priority {
        row.priority = parse_enum(p, "priority", PRIORITIES)?.to_owned();
    }
    row.updated_at = canopy_core::time::now_ms();
    Ok(row)
}

fn entry_db_id(raw: &str) -> Result<String, Error> {
    ContextId::parse(raw)
        .map(|i| i.db())
        .ok_or_else(entry_not_found)
}

fn entry_not_found() -> Error {
    Error::not_found("Context entry")
}

pub struct StoreContext;
impl Operation for StoreContext {
    const NAME: &'static str = "store_context";
    const SUMMARY: &'static str = "Store a context entry in the project's memory.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::WRITE;
    type Input = NewEntry;
    type Output = Data<ContextEntry>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let row = new_row(cx, project, &input)?;
        let entry = ContextEntry::from_row(&row);
        // Free creates (the default price) join a group commit; a priced one charges credits
        // in its own transaction, and the group hands back anything it cannot settle.
        if cx.credits == 0 {
            let audit = cx.success_audit(Some(project), Some(entry.id.clone()));
            if cx
                .svc
                .entry_writer()
                .write(cx.svc, project, row.clone(), audit)
                .await
            {
                return Ok(Data { data: entry });
            }
        }
        let mut tx = cx.svc.store().begin().await?;
        crate::governance::quotas::check(
            &mut tx,
            cx,
            project,
            canopy_store::projects::Counted::ContextEntries,
            1,
        )
        .await?;
        insert_entry(&mut tx, &row).await?;
        cx.commit(tx, Some(project), entry.id.clone(), None).await?;
        Ok(Data { data: entry })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct LogEventInput {
    /// What happened, 1–500 chars.
    pub title: String,
    #[serde(default)]
    pub body: String,
    pub scope: Option<String>,
    pub tags: Option<Vec<String>>,
    pub priority: Option<String>,
}

pub struct LogEvent;
impl Operation for LogEvent {
    const NAME: &'static str = "log_event";
    const SUMMARY: &'static str = "Append an immutable event to the project's log.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::WRITE;
    type Input = LogEventInput;
    type Output = Data<ContextEntry>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let e = NewEntry {
            kind: "event".into(),
            title: input.title,
            body: input.body,
            scope: input.scope,
            tags: input.tags,
            priority: input.priority,
        };
        StoreContext::call(cx, e).await
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct GetContextInput {
    /// One entry (`ctx_…`); filters then ignored.
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub scope: Option<String>,
    pub priority: Option<String>,
    /// Comma-separated; every tag must match.
    pub tags: Option<String>,
    /// Full-text over title and body; by relevance.
    pub search: Option<String>,
    pub created_by: Option<String>,
    /// Created at or after (RFC 3339).
    pub since: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

async fn list(
    cx: &Cx<'_>,
    input: GetContextInput,
    force_kind: Option<&str>,
) -> Result<Paged<ContextEntry>, Error> {
    let project = current_project(cx).await?;
    let mut page = PageRequest::new(input.limit, input.cursor.as_deref())?;
    let search = search_text(input.search.as_deref());
    // Search pages go by position; other lists by (created_at, id).
    let offset = search_offset(search.is_some(), &mut page)?;
    let kind = match (force_kind, &input.kind) {
        (Some(k), _) => Some(k.to_owned()),
        (None, Some(k)) => Some(parse_enum(k, "type", TYPES)?.to_owned()),
        (None, None) => None,
    };
    let priority = match &input.priority {
        Some(p) => Some(parse_enum(p, "priority", PRIORITIES)?.to_owned()),
        None => None,
    };
    let since = match &input.since {
        Some(s) => Some(
            canopy_core::time::parse_rfc3339(s)
                .ok_or_else(|| Error::validation("since", "since must be an RFC 3339 time."))?,
        ),
        None => None,
    };
    let tags = tag_filter(input.tags.as_deref());
    let filter = ContextFilter {
        kind,
        scope: input.scope,
        priority,
        tags,
        created_by: input.created_by,
        since,
        search: search.clone(),
    };
    let rows = list_entries(cx.svc.store(), project, &filter, &page, offset).await?;
    let mut paged = Paged::from_rows(rows, &page, |r| Cursor {
        t: r.created_at,
        id: r.id.clone(),
    });
    if search.is_some() {
        set_search_cursor(&mut paged, offset, &page);
    }
    Ok(paged.map(|r| ContextEntry::from_row(&r)))
}

pub struct GetContext;
impl Operation for GetContext {
    const NAME: &'static str = "get_context";
    const SUMMARY: &'static str = "Read one context entry by id, or list and search entries.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = GetContextInput;
    type Output = Paged<ContextEntry>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        if let Some(id) = input.id.as_deref() {
            let one = GetContextEntry::call(cx, EntryIdInput { id: id.to_owned() }).await?;
            return Ok(Paged {
                data: vec![one.data],
                pagination: canopy_core::Pagination {
                    has_more: false,
                    next_cursor: None,
                    limit: 1,
                },
            });
        }
        list(cx, input, None).await
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RecentEventsInput {
    /// RFC 3339.
    pub since: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub struct GetRecentEvents;
impl Operation for GetRecentEvents {
    const NAME: &'static str = "get_recent_events";
    const SUMMARY: &'static str = "Recent events of the project, newest first.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = RecentEventsInput;
    type Output = Paged<ContextEntry>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let i = GetContextInput {
            since: input.since,
            limit: input.limit,
            cursor: input.cursor,
            ..Default::default()
        };
        list(cx, i, Some("event")).await
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct EntryIdInput {
    pub id: String,
}

pub struct GetContextEntry;
impl Operation for GetContextEntry {
    const NAME: &'static str = "get_context_entry";
    const SUMMARY: &'static str = "Read one context entry.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = EntryIdInput;
    type Output = Data<ContextEntry>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let row = get_entry(cx.svc.store(), project, &entry_db_id(&input.id)?)
            .await?
            .ok_or_else(entry_not_found)?;
        Ok(Data {
            data: ContextEntry::from_row(&row),
        })
    }
}

pub struct UpdateContext;
impl Operation for UpdateContext {
    const NAME: &'static str = "update_context";
    const SUMMARY: &'static str = "Change fields of a context entry (events are immutable).";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::UPDATE;
    type Input = EntryChanges;
    type Output = Data<ContextEntry>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let id = entry_db_id(&input.id)?;
        let mut tx = cx.svc.store().begin().await?;
        let current = get_entry_tx(&mut tx, project, &id)
            .await?
            .ok_or_else(entry_not_found)?;
        let row = changed_row(current, &input)?;
        update_entry(&mut tx, &row).await?;
        let entry = ContextEntry::from_row(&row);
        cx.commit(tx, Some(project), entry.id.clone(), None).await?;
        Ok(Data { data: entry })
    }
}

pub struct DeleteContext;
impl Operation for DeleteContext {
    const NAME: &'static str = "delete_context";
    const SUMMARY: &'static str = "Delete a context entry.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::DESTROY;
    type Input = EntryIdInput;
    type Output = Data<Deleted>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let id = entry_db_id(&input.id)?;
        let mut tx = cx.svc.store().begin().await?;
        if !delete_entry(&mut tx, project, &id).await? {
            return Err(entry_not_found());
        }
        let shown = ContextId::show(&id);
        cx.commit_deleted(tx, project, shown).await
    }
}

fn check_batch(n: usize, field: &str) -> Result<(), Error> {
    if n == 0 || n > MAX_BULK {
        return Err(Error::validation(
            field,
            format!("Send 1 to {MAX_BULK} items; got {n}."),
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct BulkStoreInput {
    #[schemars(schema_with = "crate::op::list_documented_elsewhere::<NewEntry>")]
    pub entries: Vec<NewEntry>,
}

pub struct BulkStoreContext;
impl Operation for BulkStoreContext {
    const NAME: &'static str = "bulk_store_context";
    const SUMMARY: &'static str = "Store 1–100 context entries, each as store_context's arguments; one invalid entry writes none.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::WRITE;
    type Input = BulkStoreInput;
    type Output = Data<Vec<ContextEntry>>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        check_batch(input.entries.len(), "entries")?;
        let project = current_project(cx).await?;
        let rows = input
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| new_row(cx, project, e).map_err(|err| prefixed("entries", err, Some(i))))
            .collect::<Result<Vec<_>, _>>()?;
        let mut tx = cx.svc.store().begin().await?;
        crate::governance::quotas::check(
            &mut tx,
            cx,
            project,
            canopy_store::projects::Counted::ContextEntries,
            rows.len() as i64,
        )
        .await?;
        insert_entries(&mut tx, &rows).await?;
        let data: Vec<ContextEntry> = rows.iter().map(ContextEntry::from_row).collect();
        let ids: Vec<&str> = data.iter().map(|e| e.id.as_str()).collect();
        cx.commit(
            tx,
            Some(project),
            None,
            Some(serde_json::json!({ "ids": ids })),
        )
        .await?;
        Ok(Data { data })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct BulkUpdateInput {
    #[schemars(schema_with = "crate::op::list_documented_elsewhere::<EntryChanges>")]
    pub entries: Vec<EntryChanges>,
}

pub struct BulkUpdateContext;
impl Operation for BulkUpdateContext {
    const NAME: &'static str = "bulk_update_context";
    const SUMMARY: &'static str = "Update 1–100 context entries, each as update_context's arguments; one bad change applies none.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::UPDATE;
    type Input = BulkUpdateInput;
    type Output = Data<Vec<ContextEntry>>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        check_batch(input.entries.len(), "entries")?;
        let project = current_project(cx).await?;
        let mut tx = cx.svc.store().begin().await?;
        let mut data = Vec::with_capacity(input.entries.len());
        for (i, c) in input.entries.iter().enumerate() {
            let at = |e: Error| prefixed("entries", e, Some(i));
            let id = entry_db_id(&c.id).map_err(|e| at(e.with_field("id")))?;
            let current = get_entry_tx(&mut tx, project, &id)
                .await?
                .ok_or_else(|| at(entry_not_found().with_field("id")))?;
            let row = changed_row(current, c).map_err(at)?;
            update_entry(&mut tx, &row).await?;
            data.push(ContextEntry::from_row(&row));
        }
        let ids: Vec<&str> = data.iter().map(|e| e.id.as_str()).collect();
        cx.commit(
            tx,
            Some(project),
            None,
            Some(serde_json::json!({ "ids": ids })),
        )
        .await?;
        Ok(Data { data })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct BulkDeleteInput {
    pub ids: Vec<String>,
}

pub struct BulkDeleteContext;
impl Operation for BulkDeleteContext {
    const NAME: &'static str = "bulk_delete_context";
    const SUMMARY: &'static str =
        "Delete 1–100 context entries at once; an unknown id deletes none.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::DESTROY;
    type Input = BulkDeleteInput;
    type Output = Data<Vec<Deleted>>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        check_batch(input.ids.len(), "ids")?;
        let project = current_project(cx).await?;
        let mut tx = cx.svc.store().begin().await?;
        let mut data = Vec::with_capacity(input.ids.len());
        for (i, raw) in input.ids.iter().enumerate() {
            let missing = || entry_not_found().with_field(format!("ids[{i}]"));
            let id = entry_db_id(raw).map_err(|_| missing())?;
            if !delete_entry(&mut tx, project, &id).await? {
                return Err(missing());
            }
            data.push(Deleted {
                id: ContextId::show(&id),
                deleted: true,
            });
        }
        let ids: Vec<&str> = data.iter().map(|d| d.id.as_str()).collect();
        cx.commit(
            tx,
            Some(project),
            None,
            Some(serde_json::json!({ "ids": ids })),
        )
        .await?;
        Ok(Data { data })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ValueCount {
    pub value: String,
    pub count: i64,
}

async fn counts(cx: &Cx<'_>, col: ValueColumn) -> Result<Data<Vec<ValueCount>>, Error> {
    let project = current_project(cx).await?;
    let rows = value_counts(cx.svc.store(), project, col).await?;
    Ok(Data {
        data: rows
            .into_iter()
            .map(|(value, count)| ValueCount { value, count })
            .collect(),
    })
}

pub struct ListTags;
impl Operation for ListTags {
    const NAME: &'static str = "list_tags";
    const SUMMARY: &'static str = "Context entry tags, with counts.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = crate::op::NoInput;
    type Output = Data<Vec<ValueCount>>;

    async fn call(cx: &Cx<'_>, _: Self::Input) -> Result<Self::Output, Error> {
        counts(cx, ValueColumn::Tag).await
    }
}

pub struct ListScopes;
impl Operation for ListScopes {
    const NAME: &'static str = "list_scopes";
    const SUMMARY: &'static str = "Context entry scopes, with counts.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = crate::op::NoInput;
    type Output = Data<Vec<ValueCount>>;

    async fn call(cx: &Cx<'_>, _: Self::Input) -> Result<Self::Output, Error> {
        counts(cx, ValueColumn::Scope).await
    }
}

/// One of an agent's context requirements: a filter over context entries.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ContextRequirement {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Every tag must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    /// 1–100, default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// The entries a requirement selects (first page only; `limit` bounds it).
pub(crate) async fn resolve_requirement(
    cx: &Cx<'_>,
    r: &ContextRequirement,
) -> Result<Vec<ContextEntry>, Error> {
    let input = GetContextInput {
        kind: r.kind.clone(),
        scope: r.scope.clone(),
        priority: r.priority.clone(),
        tags: r.tags.as_ref().map(|t| t.join(",")),
        search: r.search.clone(),
        limit: r.limit,
        ..Default::default()
    };
    Ok(list(cx, input, None).await?.data)
}
