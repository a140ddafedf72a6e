//! Agents: definitions of the agents working on a project (Minolith agents), the curated
//! registry, and resolving the agent a request names (`X-Minolith-Agent`).

pub mod registry;

use canopy_core::suggest::parse_enum;
use canopy_core::{
    AgentId, Code, Data, Deleted, Error, PageRequest, Paged, ProjectId, RegistryAgentId, Scope,
};
use canopy_store::agents::{
    AgentFilter, AgentRow, clear_main_tx, delete_agent, find_agent, find_own_agent_tx,
    insert_agent, list_agents, main_agent_tx, own_agents_tx, update_agent,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::knowledge::context::{ContextEntry, ContextRequirement, resolve_requirement};
use crate::knowledge::{author, current_project};
use crate::op::{Cx, Hints, Operation};

const SCOPES: &[&str] = &["project", "global"];
const SOURCES: &[&str] = &["user", "registry", "override"];

/// The details of a definition (kept as JSON beside the indexed columns).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct AgentSpec {
    /// One line: what the agent does.
    #[serde(default)]
    pub role: String,
    /// System prompt, up to 50,000 chars.
    #[serde(default)]
    pub prompt: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tools_allowed: Vec<String>,
    #[serde(default)]
    pub tools_denied: Vec<String>,
    /// Up to 10 context filters, resolved on read.
    #[serde(default)]
    pub context_requirements: Vec<ContextRequirement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Agent {
    /// `agt_…`
    pub id: AgentId,
    pub name: String,
    pub is_main: bool,
    /// `project` or `global` (visible to every project of the org).
    pub scope: String,
    /// `user`, `registry` or `override`.
    pub source: String,
    pub tags: Vec<String>,
    #[serde(flatten)]
    pub spec: AgentSpec,
    pub created_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Agent {
    pub(crate) fn from_row(r: &AgentRow) -> Result<Agent, Error> {
        Ok(Agent {
            id: AgentId::from_db(&r.id).ok_or_else(|| Error::internal("bad agent id"))?,
            name: r.name.clone(),
            is_main: r.is_main != 0,
            scope: r.scope.clone(),
            source: r.source.clone(),
            tags: serde_json::from_str(&r.tags).unwrap_or_default(),
            spec: serde_json::from_str(&r.spec).unwrap_or_default(),
            created_by: r.created_by.clone(),
            created_at: canopy_core::time::rfc3339(r.created_at),
            updated_at: canopy_core::time::rfc3339(r.updated_at),
        })
    }
}

/// A new or replacing definition.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct AgentInput {
    /// Unique; 1–64 of a-z 0-9 - _; what the agent header names.
    pub name: String,
    #[serde(default)]
    pub is_main: bool,
    /// Take over main from another agent.
    #[serde(default)]
    pub replace_main: bool,
    /// `project` (default) or `global`.
    pub scope: Option<String>,
    /// `user` (default), `registry` or `override`.
    pub source: Option<String>,
    /// Up to 20 tags.
    pub tags: Option<Vec<String>>,
    #[serde(flatten)]
    pub spec: AgentSpec,
}

fn check_name(n: &str) -> Result<String, Error> {
    let ok = !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(n.to_owned())
    } else {
        Err(Error::validation(
            "name",
            "name must be 1 to 64 characters of a-z, 0-9, '-' and '_'.",
        ))
    }
}

fn check_spec(s: &AgentSpec) -> Result<(), Error> {
    if s.prompt.chars().count() > 50_000 {
        return Err(Error::validation(
            "prompt",
            "prompt must be at most 50,000 characters.",
        ));
    }
    if s.role.chars().count() > 500 {
        return Err(Error::validation(
            "role",
            "role is one line: at most 500 characters.",
        ));
    }
    if s.context_requirements.len() > 10 {
        return Err(Error::validation(
            "context_requirements",
            "At most 10 context requirements.",
        ));
    }
    for (i, r) in s.context_requirements.iter().enumerate() {
        if let Some(k) = &r.kind {
            parse_enum(k, "type", crate::knowledge::context::TYPES)
                .map_err(|e| e.with_field(format!("context_requirements[{i}].type")))?;
        }
        if r.limit.is_some_and(|l| !(1..=100).contains(&l)) {
            return Err(Error::validation(
                &format!("context_requirements[{i}].limit"),
                "limit must be 1 to 100.",
            ));
        }
    }
    for (field, schema) in [
        ("input_schema", &s.input_schema),
        ("output_schema", &s.output_schema),
    ] {
        if schema.as_ref().is_some_and(|v| !v.is_object()) {
            return Err(Error::validation(
                field,
                format!("{field} must be a JSON Schema object."),
            ));
        }
    }
    Ok(())
}

fn row_from_input(
    cx: &Cx<'_>,
    project: ProjectId,
    input: &AgentInput,
    default_source: &'static str,
) -> Result<AgentRow, Error> {
    let name = check_name(&input.name)?;
    check_spec(&input.spec)?;
    let scope = parse_enum(input.scope.as_deref().unwrap_or("project"), "scope", SCOPES)?;
    let source = parse_enum(
        input.source.as_deref().unwrap_or(default_source),
        "source",
        SOURCES,
    )?;
    let tags = input.tags.clone().unwrap_or_default();
    if tags.len() > 20 {
        return Err(Error::validation("tags", "At most 20 tags."));
    }
    let now = canopy_core::time::now_ms();
    Ok(AgentRow {
        id: AgentId::new().db(),
        org_id: cx.org().db(),
        project_id: project.db(),
        name,
        scope: scope.to_owned(),
        source: source.to_owned(),
        is_main: i64::from(input.is_main),
        tags: serde_json::to_string(&tags)?,
        spec: serde_json::to_string(&input.spec)?,
        created_by: Some(author(cx)),
        created_at: now,
        updated_at: now,
    })
}

/// Enforces one main agent per project: another main → 409 unless `replace` (then it is demoted).
async fn settle_main(
    tx: &mut canopy_store::Tx,
    project: ProjectId,
    row: &AgentRow,
    replace: bool,
) -> Result<(), Error> {
    if row.is_main == 0 {
        return Ok(());
    }
    if let Some(other) = main_agent_tx(tx, project, &row.id).await? {
        if !replace {
            return Err(Error::conflict(format!(
                "'{}' is already the main agent; send \"replace_main\": true to replace it.",
                other.name
            ))
            .with_field("is_main"));
        }
        clear_main_tx(tx, project).await?;
    }
    Ok(())
}

fn name_conflict(e: Error, name: &str) -> Error {
    if e.code == Code::Conflict {
        Error::conflict(format!("An agent named '{name}' exists in this project."))
            .with_field("name")
    } else {
        e
    }
}

fn agent_not_found() -> Error {
    Error::not_found("Agent")
}

/// Checks the agent a request names: it must be defined in the project or globally in the org.
pub async fn resolve_agent_header(cx: &Cx<'_>, name: &str) -> Result<(), Error> {
    let project = current_project(cx).await?;
    match find_agent(cx.svc.store(), cx.org(), project, None, name).await? {
        Some(_) => Ok(()),
        None => Err(Error::new(Code::UnknownAgent, format!("No agent named '{name}' is defined in this project. Create it with POST /v1/agents or fix the X-Minolith-Agent header."))
            .with_field("X-Minolith-Agent")),
    }
}

pub struct CreateAgent;
impl Operation for CreateAgent {
    const NAME: &'static str = "create_agent";
    const SUMMARY: &'static str = "Define an agent of the project.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::WRITE;
    const CREDITS: u32 = 3;
    type Input = AgentInput;
    type Output = Data<Agent>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let row = row_from_input(cx, project, &input, "user")?;
        let mut tx = cx.svc.store().begin().await?;
        crate::governance::quotas::check(
            &mut tx,
            cx,
            project,
            canopy_store::projects::Counted::Agents,
            1,
        )
        .await?;
        settle_main(&mut tx, project, &row, input.replace_main).await?;
        insert_agent(&mut tx, &row)
            .await
            .map_err(|e| name_conflict(e, &row.name))?;
        let agent = Agent::from_row(&row)?;
        cx.commit(tx, Some(project), agent.id.to_string(), None)
            .await?;
        Ok(Data { data: agent })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListAgentsInput {
    pub scope: Option<String>,
    pub source: Option<String>,
    /// One tag.
    pub tags: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub struct ListAgents;
impl Operation for ListAgents {
    const NAME: &'static str = "list_agents";
    const SUMMARY: &'static str = "List the project's and the org's global agents.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = ListAgentsInput;
    type Output = Paged<Agent>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let page = PageRequest::new(input.limit, input.cursor.as_deref())?;
        let filter = AgentFilter {
            scope: input
                .scope
                .as_deref()
                .map(|s| parse_enum(s, "scope", SCOPES))
                .transpose()?
                .map(str::to_owned),
            source: input
                .source
                .as_deref()
                .map(|s| parse_enum(s, "source", SOURCES))
                .transpose()?
                .map(str::to_owned),
            tag: input
                .tags
                .and_then(|t| t.split(',').next().map(|x| x.trim().to_owned()))
                .filter(|t| !t.is_empty()),
        };
        let rows = list_agents(cx.svc.store(), cx.org(), project, &filter, &page).await?;
        Paged::try_from_rows(
            rows,
            &page,
            |r| (r.created_at, &r.id),
            |r| Agent::from_row(&r),
        )
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AgentRefInput {
    /// Id or name.
    #[serde(alias = "name")]
    pub id: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct AgentWithContext {
    #[serde(flatten)]
    pub agent: Agent,
    /// The entries its context requirements select, now.
    pub context: Vec<ContextEntry>,
}

async fn visible_agent(cx: &Cx<'_>, raw: &str) -> Result<(ProjectId, AgentRow), Error> {
    let project = current_project(cx).await?;
    let id = AgentId::parse(raw).map(|i| i.db());
    let row = find_agent(cx.svc.store(), cx.org(), project, id.as_deref(), raw)
        .await?
        .ok_or_else(agent_not_found)?;
    Ok((project, row))
}

pub struct GetAgent;
impl Operation for GetAgent {
    const NAME: &'static str = "get_agent";
    const SUMMARY: &'static str = "Read an agent with its context requirements resolved.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = AgentRefInput;
    type Output = Data<AgentWithContext>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let (_, row) = visible_agent(cx, &input.id).await?;
        let agent = Agent::from_row(&row)?;
        let mut context = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for r in &agent.spec.context_requirements {
            for e in resolve_requirement(cx, r).await? {
                if seen.insert(e.id.clone()) {
                    context.push(e);
                }
            }
        }
        Ok(Data {
            data: AgentWithContext { agent, context },
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateAgentInput {
    /// Id or current name.
    pub id: String,
    pub name: Option<String>,
    pub is_main: Option<bool>,
    #[serde(default)]
    pub replace_main: bool,
    pub scope: Option<String>,
    pub tags: Option<Vec<String>>,
    pub role: Option<String>,
    pub prompt: Option<String>,
    pub description: Option<String>,
    pub tools_allowed: Option<Vec<String>>,
    pub tools_denied: Option<Vec<String>>,
    pub context_requirements: Option<Vec<ContextRequirement>>,
    pub input_schema: Option<serde_json::Value>,
    pub output_schema: Option<serde_json::Value>,
    pub model: Option<String>,
}

pub struct UpdateAgent;
impl Operation for UpdateAgent {
    const NAME: &'static str = "update_agent";
    const SUMMARY: &'static str = "Change an agent; omitted fields stay.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::UPDATE;
    type Input = UpdateAgentInput;
    type Output = Data<Agent>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let id = AgentId::parse(&i.id).map(|x| x.db());
        let mut tx = cx.svc.store().begin().await?;
        let mut row = find_own_agent_tx(&mut tx, project, id.as_deref(), &i.id)
            .await?
            .ok_or_else(agent_not_found)?;
        let mut spec: AgentSpec = serde_json::from_str(&row.spec).unwrap_or_default();
        if let Some(n) = &i.name {
            row.name = check_name(n)?;
        }
        if let Some(m) = i.is_main {
            row.is_main = i64::from(m);
        }
        if let Some(s) = &i.scope {
            row.scope = parse_enum(s, "scope", SCOPES)?.to_owned();
        }
        if let Some(t) = &i.tags {
            if t.len() > 20 {
                return Err(Error::validation("tags", "At most 20 tags."));
            }
            row.tags = serde_json::to_string(t)?;
        }
        macro_rules! set { ($($f:ident),*) => { $(if let Some(v) = i.$f.clone() { spec.$f = v; })* }; }
        set!(
            role,
            prompt,
            description,
            tools_allowed,
            tools_denied,
            context_requirements
        );
        if i.input_schema.is_some() {
            spec.input_schema = i.input_schema.clone();
        }
        if i.output_schema.is_some() {
            spec.output_schema = i.output_schema.clone();
        }
        if i.model.is_some() {
            spec.model = i.model.clone();
        }
        check_spec(&spec)?;
        row.spec = serde_json::to_string(&spec)?;
        row.updated_at = canopy_core::time::now_ms();
        settle_main(&mut tx, project, &row, i.replace_main).await?;
        update_agent(&mut tx, &row)
            .await
            .map_err(|e| name_conflict(e, &row.name))?;
        let agent = Agent::from_row(&row)?;
        cx.commit(tx, Some(project), agent.id.to_string(), None)
            .await?;
        Ok(Data { data: agent })
    }
}

pub struct DeleteAgent;
impl Operation for DeleteAgent {
    const NAME: &'static str = "delete_agent";
    const SUMMARY: &'static str = "Delete an agent definition of the project.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::DESTROY;
    type Input = AgentRefInput;
    type Output = Data<Deleted>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let id = AgentId::parse(&input.id).map(|x| x.db());
        let mut tx = cx.svc.store().begin().await?;
        let row = find_own_agent_tx(&mut tx, project, id.as_deref(), &input.id)
            .await?
            .ok_or_else(agent_not_found)?;
        delete_agent(&mut tx, project, &row.id).await?;
        let shown = AgentId::show(&row.id);
        cx.commit_deleted(tx, project, shown).await
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SyncAgentsInput {
    #[schemars(schema_with = "crate::op::list_documented_elsewhere::<AgentInput>")]
    pub agents: Vec<AgentInput>,
    /// `merge` (default) keeps unlisted agents; `replace` deletes them.
    pub mode: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct AgentFile {
    pub name: String,
    /// `<name>.md`, e.g. for `.claude/agents/`.
    pub filename: String,
    /// Front matter (name, description, tools, model) and the prompt.
    pub content: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct SyncResult {
    pub agents: Vec<Agent>,
    pub files: Vec<AgentFile>,
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
}

fn file_of(a: &Agent) -> AgentFile {
    let mut fm = format!(
        "---\nname: {}\ndescription: {}\n",
        a.name,
        a.spec.role.replace('\n', " ")
    );
    if !a.spec.tools_allowed.is_empty() {
        fm.push_str(&format!("tools: {}\n", a.spec.tools_allowed.join(", ")));
    }
    if let Some(m) = &a.spec.model {
        fm.push_str(&format!("model: {m}\n"));
    }
    fm.push_str("---\n\n");
    fm.push_str(&a.spec.prompt);
    if !fm.ends_with('\n') {
        fm.push('\n');
    }
    AgentFile {
        name: a.name.clone(),
        filename: format!("{}.md", a.name),
        content: fm,
    }
}

pub struct SyncAgents;
impl Operation for SyncAgents {
    const NAME: &'static str = "sync_agents";
    const SUMMARY: &'static str = "Upsert agents by name, each as create_agent's arguments (merge or replace), and get every definition as a ready-to-write file.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::UPDATE;
    type Input = SyncAgentsInput;
    type Output = Data<SyncResult>;

    async fn call(cx: &Cx<'_>, input: Self::Input) -> Result<Self::Output, Error> {
        let mode = parse_enum(
            input.mode.as_deref().unwrap_or("merge"),
            "mode",
            &["merge", "replace"],
        )?;
        if input.agents.len() > 100 {
            return Err(Error::validation("agents", "At most 100 agents per sync."));
        }
        let project = current_project(cx).await?;
        let mut rows = Vec::with_capacity(input.agents.len());
        for (i, a) in input.agents.iter().enumerate() {
            let r = row_from_input(cx, project, a, "user").map_err(|e| {
                let f = e.field.clone().unwrap_or_default();
                e.with_field(format!("agents[{i}].{f}"))
            })?;
            if rows.iter().any(|x: &AgentRow| x.name == r.name) {
                return Err(Error::validation(
                    &format!("agents[{i}].name"),
                    format!("'{}' is listed twice.", r.name),
                ));
            }
            rows.push(r);
        }
        let mut tx = cx.svc.store().begin().await?;
        let existing = own_agents_tx(&mut tx, project).await?;
        let (mut created, mut updated, mut deleted) = (0, 0, 0);
        if mode == "replace" {
            for old in existing
                .iter()
                .filter(|o| !rows.iter().any(|r| r.name == o.name))
            {
                delete_agent(&mut tx, project, &old.id).await?;
                deleted += 1;
            }
        }
        // Demote first so the listed main (if any) can take the place.
        if rows.iter().any(|r| r.is_main != 0) {
            if rows.iter().filter(|r| r.is_main != 0).count() > 1 {
                return Err(
                    Error::conflict("Only one agent can be the main agent.").with_field("agents")
                );
            }
            clear_main_tx(&mut tx, project).await?;
        }
        let new_ones = rows
            .iter()
            .filter(|r| !existing.iter().any(|o| o.name == r.name))
            .count() as i64;
        if new_ones > 0 {
            crate::governance::quotas::check(
                &mut tx,
                cx,
                project,
                canopy_store::projects::Counted::Agents,
                new_ones,
            )
            .await?;
        }
        for r in rows.iter_mut() {
            match existing.iter().find(|o| o.name == r.name) {
                Some(old) => {
                    r.id = old.id.clone();
                    r.created_at = old.created_at;
                    r.created_by = old.created_by.clone();
                    update_agent(&mut tx, r).await?;
                    updated += 1;
                }
                None => {
                    insert_agent(&mut tx, r).await?;
                    created += 1;
                }
            }
        }
        let all = own_agents_tx(&mut tx, project).await?;
        let agents = all
            .iter()
            .map(Agent::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let files = agents.iter().map(file_of).collect();
        let detail = serde_json::json!({"mode": mode, "created": created, "updated": updated, "deleted": deleted});
        cx.commit(tx, Some(project), None, Some(detail)).await?;
        Ok(Data {
            data: SyncResult {
                agents,
                files,
                created,
                updated,
                deleted,
            },
        })
    }
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct RegistryAgent {
    /// `agr_…`
    pub id: RegistryAgentId,
    pub name: String,
    pub category: String,
    pub role: String,
    pub description: String,
    pub tags: Vec<String>,
    pub tools_allowed: Vec<String>,
    pub prompt: String,
}

fn registry_view(t: &registry::Template) -> RegistryAgent {
    RegistryAgent {
        id: registry::id_of(t),
        name: t.name.into(),
        category: t.category.into(),
        role: t.role.into(),
        description: t.description.into(),
        tags: t.tags.iter().map(|s| (*s).to_owned()).collect(),
        tools_allowed: t.tools_allowed.iter().map(|s| (*s).to_owned()).collect(),
        prompt: t.prompt.into(),
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct BrowseRegistryInput {
    pub category: Option<String>,
    pub tag: Option<String>,
    /// Words to find in name, role or description.
    pub search: Option<String>,
}

pub struct BrowseRegistry;
impl Operation for BrowseRegistry {
    const NAME: &'static str = "browse_registry";
    const SUMMARY: &'static str = "Curated agent templates shipped with Canopy.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = BrowseRegistryInput;
    type Output = Data<Vec<RegistryAgent>>;

    async fn call(_cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let search = i.search.as_deref().map(str::to_lowercase);
        let data = registry::TEMPLATES
            .iter()
            .filter(|t| i.category.as_deref().is_none_or(|c| t.category == c))
            .filter(|t| i.tag.as_deref().is_none_or(|g| t.tags.contains(&g)))
            .filter(|t| {
                search.as_deref().is_none_or(|q| {
                    let hay = format!("{} {} {}", t.name, t.role, t.description).to_lowercase();
                    q.split_whitespace().all(|w| hay.contains(w))
                })
            })
            .map(registry_view)
            .collect();
        Ok(Data { data })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RegistryRefInput {
    /// Template id or name.
    pub id: String,
    /// Default: the template's.
    pub name: Option<String>,
}

pub struct GetRegistryAgent;
impl Operation for GetRegistryAgent {
    const NAME: &'static str = "get_registry_agent";
    const SUMMARY: &'static str = "One curated agent template.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = RegistryRefInput;
    type Output = Data<RegistryAgent>;

    async fn call(_cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let t = registry::find(&i.id).ok_or_else(|| Error::not_found("Registry agent"))?;
        Ok(Data {
            data: registry_view(t),
        })
    }
}

pub struct InstallRegistryAgent;
impl Operation for InstallRegistryAgent {
    const NAME: &'static str = "install_registry_agent";
    const SUMMARY: &'static str = "Copy a registry template into the project as an agent (free).";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::WRITE;
    type Input = RegistryRefInput;
    type Output = Data<Agent>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let t = registry::find(&i.id).ok_or_else(|| Error::not_found("Registry agent"))?;
        let input = AgentInput {
            name: i.name.clone().unwrap_or_else(|| t.name.to_owned()),
            is_main: false,
            replace_main: false,
            scope: None,
            source: Some("registry".into()),
            tags: Some(t.tags.iter().map(|s| (*s).to_owned()).collect()),
            spec: AgentSpec {
                role: t.role.into(),
                prompt: t.prompt.into(),
                description: t.description.into(),
                tools_allowed: t.tools_allowed.iter().map(|s| (*s).to_owned()).collect(),
                ..Default::default()
            },
        };
        let project = current_project(cx).await?;
        let row = row_from_input(cx, project, &input, "registry")?;
        let mut tx = cx.svc.store().begin().await?;
        crate::governance::quotas::check(
            &mut tx,
            cx,
            project,
            canopy_store::projects::Counted::Agents,
            1,
        )
        .await?;
        insert_agent(&mut tx, &row)
            .await
            .map_err(|e| name_conflict(e, &row.name))?;
        let agent = Agent::from_row(&row)?;
        cx.commit(
            tx,
            Some(project),
            agent.id.to_string(),
            Some(serde_json::json!({"template": t.name})),
        )
        .await?;
        Ok(Data { data: agent })
    }
}
