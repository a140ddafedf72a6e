//! Feedback: items collected through the API, MCP or the embeddable widget (1 credit each),
//! triage fields, and notes.

use canopy_core::suggest::parse_enum;
use canopy_core::{
    CredentialKind, Data, Deleted, Error, FeedbackId, FeedbackNoteId, KeyId, PageRequest, Paged,
    Principal, ProjectId, Scope, Scopes,
};
use canopy_store::feedback::{
    FeedbackFilter, FeedbackRow, NoteRow, delete_item, get_item, get_item_tx, get_project_setting,
    insert_note, list_items, notes_of, put_project_setting, upsert_item,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Services;
use crate::knowledge::{author, current_project};
use crate::op::{Cx, Hints, Operation};

pub const TYPES: &[&str] = &["bug", "feature", "general", "flow-quality", "question"];
pub const STATUSES: &[&str] = &[
    "open",
    "under_review",
    "planned",
    "in_progress",
    "done",
    "closed",
];
pub const PRIORITIES: &[&str] = &["low", "medium", "high", "critical"];
pub const SOURCES: &[&str] = &["api", "mcp", "widget"];
const WIDGET_SETTING: &str = "feedback_widget";

/// The free-form part of an item.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct FeedbackDetails {
    #[serde(default)]
    pub title: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id_external: Option<String>,
    /// 1–5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FeedbackNote {
    pub id: String,
    pub body: String,
    pub author: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FeedbackItem {
    /// `fbk_…`
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub priority: String,
    pub source: String,
    pub tags: Vec<String>,
    #[serde(flatten)]
    pub details: FeedbackDetails,
    pub created_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// On a single read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<FeedbackNote>>,
}

impl FeedbackItem {
    fn from_row(r: &FeedbackRow) -> FeedbackItem {
        FeedbackItem {
            id: FeedbackId::show(&r.id),
            kind: r.kind.clone(),
            status: r.status.clone(),
            priority: r.priority.clone(),
            source: r.source.clone(),
            tags: serde_json::from_str(&r.tags).unwrap_or_default(),
            details: serde_json::from_str(&r.spec).unwrap_or_default(),
            created_by: r.created_by.clone(),
            created_at: canopy_core::time::rfc3339(r.created_at),
            updated_at: canopy_core::time::rfc3339(r.updated_at),
            notes: None,
        }
    }
}

fn check_details(d: &FeedbackDetails) -> Result<(), Error> {
    let body = d.body.trim();
    if body.is_empty() || body.chars().count() > 10_000 {
        return Err(Error::validation(
            "body",
            "body must be 1 to 10,000 characters.",
        ));
    }
    if d.title.chars().count() > 300 {
        return Err(Error::validation(
            "title",
            "title must be at most 300 characters.",
        ));
    }
    if d.rating.is_some_and(|r| !(1..=5).contains(&r)) {
        return Err(Error::validation("rating", "rating must be 1 to 5."));
    }
    if d.user_email
        .as_deref()
        .is_some_and(|e| !e.contains('@') || e.len() > 320)
    {
        return Err(Error::validation(
            "user_email",
            "user_email must be an email address.",
        ));
    }
    for (f, v) in [
        ("page_url", &d.page_url),
        ("user_name", &d.user_name),
        ("user_id_external", &d.user_id_external),
    ] {
        if v.as_deref().is_some_and(|s| s.chars().count() > 2_000) {
            return Err(Error::validation(
                f,
                format!("{f} must be at most 2,000 characters."),
            ));
        }
    }
    Ok(())
}

fn tags_ok(t: &[String]) -> Result<String, Error> {
    if t.len() > 20
        || t.iter()
            .any(|x| x.trim().is_empty() || x.chars().count() > 64)
    {
        return Err(Error::validation(
            "tags",
            "Up to 20 tags of 1 to 64 characters.",
        ));
    }
    Ok(serde_json::to_string(
        &t.iter()
            .map(|x| x.trim().to_lowercase())
            .collect::<Vec<_>>(),
    )?)
}

fn not_found() -> Error {
    Error::not_found("Feedback item")
}

fn item_db(raw: &str) -> Result<String, Error> {
    FeedbackId::parse(raw).map(|i| i.db()).ok_or_else(not_found)
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SubmitFeedbackInput {
    /// bug, feature, general (default), flow-quality or question.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub priority: Option<String>,
    /// api (default), mcp or widget.
    pub source: Option<String>,
    pub tags: Option<Vec<String>>,
    #[serde(flatten)]
    pub details: FeedbackDetails,
}

pub struct SubmitFeedback;
impl Operation for SubmitFeedback {
    const NAME: &'static str = "submit_feedback";
    const SUMMARY: &'static str = "Record a feedback item.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::WRITE;
    const CREDITS: u32 = 1;
    type Input = SubmitFeedbackInput;
    type Output = Data<FeedbackItem>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        check_details(&i.details)?;
        let now = canopy_core::time::now_ms();
        let row = FeedbackRow {
            id: FeedbackId::new().db(),
            org_id: cx.org().db(),
            project_id: project.db(),
            kind: parse_enum(i.kind.as_deref().unwrap_or("general"), "type", TYPES)?.into(),
            status: "open".into(),
            priority: parse_enum(
                i.priority.as_deref().unwrap_or("medium"),
                "priority",
                PRIORITIES,
            )?
            .into(),
            source: parse_enum(i.source.as_deref().unwrap_or("api"), "source", SOURCES)?.into(),
            tags: tags_ok(i.tags.as_deref().unwrap_or_default())?,
            spec: serde_json::to_string(&i.details)?,
            created_by: Some(author(cx)),
            created_at: now,
            updated_at: now,
        };
        let mut tx = cx.svc.store().begin().await?;
        crate::governance::quotas::check(
            &mut tx,
            cx,
            project,
            canopy_store::projects::Counted::FeedbackItems,
            1,
        )
        .await?;
        upsert_item(&mut tx, &row).await?;
        let item = FeedbackItem::from_row(&row);
        cx.commit(tx, Some(project), item.id.clone(), None).await?;
        Ok(Data { data: item })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListFeedbackInput {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub status: Option<String>,
    pub priority: Option<String>,
    pub source: Option<String>,
    pub tags: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub struct ListFeedback;
impl Operation for ListFeedback {
    const NAME: &'static str = "list_feedback";
    const SUMMARY: &'static str = "List feedback items, newest first.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = ListFeedbackInput;
    type Output = Paged<FeedbackItem>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let page = PageRequest::new(i.limit, i.cursor.as_deref())?;
        let pick = |v: &Option<String>, field: &str, set: &[&'static str]| {
            v.as_deref()
                .map(|s| parse_enum(s, field, set).map(str::to_owned))
                .transpose()
        };
        let f = FeedbackFilter {
            kind: pick(&i.kind, "type", TYPES)?,
            status: pick(&i.status, "status", STATUSES)?,
            priority: pick(&i.priority, "priority", PRIORITIES)?,
            source: pick(&i.source, "source", SOURCES)?,
            tag: i
                .tags
                .and_then(|t| t.split(',').next().map(|x| x.trim().to_lowercase()))
                .filter(|t| !t.is_empty()),
        };
        let rows = list_items(cx.svc.store(), project, &f, &page).await?;
        Paged::try_from_rows(
            rows,
            &page,
            |r| (r.created_at, &r.id),
            |r| Ok::<_, Error>(FeedbackItem::from_row(&r)),
        )
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ItemIdInput {
    pub id: String,
}

pub struct GetFeedbackItem;
impl Operation for GetFeedbackItem {
    const NAME: &'static str = "get_feedback_item";
    const SUMMARY: &'static str = "Read a feedback item with its notes.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = ItemIdInput;
    type Output = Data<FeedbackItem>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let row = get_item(cx.svc.store(), project, &item_db(&i.id)?)
            .await?
            .ok_or_else(not_found)?;
        let mut item = FeedbackItem::from_row(&row);
        item.notes = Some(
            notes_of(cx.svc.store(), &row.id)
                .await?
                .into_iter()
                .map(|n| FeedbackNote {
                    id: FeedbackNoteId::show(&n.id),
                    body: n.body,
                    author: n.author,
                    created_at: canopy_core::time::rfc3339(n.created_at),
                })
                .collect(),
        );
        Ok(Data { data: item })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TriageInput {
    pub id: String,
    pub status: Option<String>,
    pub priority: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub tags: Option<Vec<String>>,
    pub title: Option<String>,
}

pub struct UpdateFeedbackStatus;
impl Operation for UpdateFeedbackStatus {
    const NAME: &'static str = "update_feedback_status";
    const SUMMARY: &'static str = "Triage a feedback item: status, priority, type, tags, title.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::UPDATE;
    type Input = TriageInput;
    type Output = Data<FeedbackItem>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let mut tx = cx.svc.store().begin().await?;
        let mut row = get_item_tx(&mut tx, project, &item_db(&i.id)?)
            .await?
            .ok_or_else(not_found)?;
        if let Some(s) = &i.status {
            row.status = parse_enum(s, "status", STATUSES)?.into();
        }
        if let Some(p) = &i.priority {
            row.priority = parse_enum(p, "priority", PRIORITIES)?.into();
        }
        if let Some(k) = &i.kind {
            row.kind = parse_enum(k, "type", TYPES)?.into();
        }
        if let Some(t) = &i.tags {
            row.tags = tags_ok(t)?;
        }
        if let Some(t) = &i.title {
            let mut d: FeedbackDetails = serde_json::from_str(&row.spec).unwrap_or_default();
            d.title = t.clone();
            check_details(&d)?;
            row.spec = serde_json::to_string(&d)?;
        }
        row.updated_at = canopy_core::time::now_ms();
        upsert_item(&mut tx, &row).await?;
        let item = FeedbackItem::from_row(&row);
        cx.commit(tx, Some(project), item.id.clone(), None).await?;
        Ok(Data { data: item })
    }
}

pub struct DeleteFeedbackItem;
impl Operation for DeleteFeedbackItem {
    const NAME: &'static str = "delete_feedback_item";
    const SUMMARY: &'static str = "Delete a feedback item and its notes.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::DESTROY;
    type Input = ItemIdInput;
    type Output = Data<Deleted>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let id = item_db(&i.id)?;
        let mut tx = cx.svc.store().begin().await?;
        if !delete_item(&mut tx, project, &id).await? {
            return Err(not_found());
        }
        let shown = FeedbackId::show(&id);
        cx.commit_deleted(tx, project, shown).await
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AddNoteInput {
    pub id: String,
    /// 1–10,000 characters.
    pub body: String,
}

pub struct AddFeedbackNote;
impl Operation for AddFeedbackNote {
    const NAME: &'static str = "add_feedback_note";
    const SUMMARY: &'static str = "Add a note to a feedback item.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::WRITE;
    type Input = AddNoteInput;
    type Output = Data<FeedbackNote>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let body = i.body.trim();
        if body.is_empty() || body.chars().count() > 10_000 {
            return Err(Error::validation(
                "body",
                "body must be 1 to 10,000 characters.",
            ));
        }
        let mut tx = cx.svc.store().begin().await?;
        let item = get_item_tx(&mut tx, project, &item_db(&i.id)?)
            .await?
            .ok_or_else(not_found)?;
        let n = NoteRow {
            id: FeedbackNoteId::new().db(),
            item_id: item.id.clone(),
            body: body.into(),
            author: Some(author(cx)),
            created_at: canopy_core::time::now_ms(),
        };
        insert_note(&mut tx, &n).await?;
        let note = FeedbackNote {
            id: FeedbackNoteId::show(&n.id),
            body: n.body,
            author: n.author,
            created_at: canopy_core::time::rfc3339(n.created_at),
        };
        cx.commit(
            tx,
            Some(project),
            FeedbackId::from_db(&item.id).map(|x| x.to_string()),
            None,
        )
        .await?;
        Ok(Data { data: note })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WidgetSettings {
    /// Whether `POST /public/{project}/feedback` accepts submissions.
    pub enabled: bool,
}

pub struct ConfigureFeedbackWidget;
impl Operation for ConfigureFeedbackWidget {
    const NAME: &'static str = "configure_feedback_widget";
    const SUMMARY: &'static str = "Turn the public feedback widget of the project on or off.";
    const SCOPE: Option<Scope> = Some(Scope::Admin);
    const HINTS: Hints = Hints::UPDATE;
    type Input = WidgetSettings;
    type Output = Data<WidgetSettings>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let mut tx = cx.svc.store().begin().await?;
        put_project_setting(
            &mut tx,
            project,
            WIDGET_SETTING,
            &serde_json::to_string(&i)?,
            canopy_core::time::now_ms(),
        )
        .await?;
        cx.commit(
            tx,
            Some(project),
            project.to_string(),
            Some(serde_json::json!({"enabled": i.enabled})),
        )
        .await?;
        Ok(Data { data: i })
    }
}

impl Services {
    /// A submission from the public widget: no key; only when the project enabled the widget.
    /// Runs `submit_feedback` as the project (audited under the all-zero key, source `widget`),
    /// so credits, caps and audit apply as to any write.
    pub async fn widget_feedback(
        &self,
        project: &str,
        mut input: SubmitFeedbackInput,
        request_id: Option<&str>,
    ) -> Result<Data<FeedbackItem>, Error> {
        let row = canopy_store::projects::find_public_project(self.store(), project)
            .await?
            .ok_or_else(|| Error::not_found("Project"))?;
        let pid = ProjectId::from_db(&row.id).ok_or_else(|| Error::internal("bad project id"))?;
        let enabled = get_project_setting(self.store(), pid, WIDGET_SETTING)
            .await?
            .and_then(|v| serde_json::from_str::<WidgetSettings>(&v).ok())
            .is_some_and(|w| w.enabled);
        if !enabled {
            return Err(Error::not_found("Feedback widget"));
        }
        let org = canopy_core::OrgId::from_db(&row.org_id)
            .ok_or_else(|| Error::internal("bad org id"))?;
        let widget = Principal {
            key_id: KeyId::nil(),
            org_id: org,
            project_id: Some(pid),
            scopes: Scopes::empty().with(Scope::Write),
            kind: CredentialKind::AccessKey,
            agent: None,
        };
        input.source = Some("widget".into());
        let meta = crate::op::Meta {
            request_id,
            project: None,
        };
        crate::op::dispatch::<SubmitFeedback>(self, &widget, meta, input).await
    }
}

impl Services {
    /// Counts one keyless request against `bucket` (e.g. a client address) and its allowance.
    pub async fn public_rate_check(
        &self,
        bucket: &str,
        per_minute: u32,
    ) -> Result<crate::limits::RateDecision, Error> {
        let limit = crate::limits::Limit {
            bucket: format!("pub:{bucket}").into(),
            per_minute,
        };
        self.limiter()
            .hit(self.store(), &[limit], canopy_core::time::now_ms() / 1000)
            .await
    }
}
