//! Styleguide: six token sections, and named components, patterns and voice rules; export of
//! everything and a search across all of it. (Assets come with the documents work.)

use std::collections::BTreeMap;
use std::marker::PhantomData;

use canopy_core::suggest::parse_enum;
use canopy_core::{
    Data, Deleted, Error, PageRequest, Paged, ProjectId, Scope, StyleComponentId, StylePatternId,
    StyleVoiceId,
};
use canopy_store::styleguide::{
    ItemRow, TokenRow, all_items, all_tokens, delete_item, find_item, find_item_tx, list_items,
    put_tokens, upsert_item,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::knowledge::{author, current_project};
use crate::op::{Cx, Hints, Operation};

pub const SECTIONS: &[&str] = &[
    "colours",
    "typography",
    "spacing",
    "borders",
    "shadows",
    "breakpoints",
];

/// One kind of named styleguide item, and the operation names it is served under.
pub trait ItemKind: Send + Sync + 'static {
    const KIND: &'static str;
    const DEFINE: &'static str;
    const DEFINE_SUMMARY: &'static str;
    const LIST: &'static str;
    const GET: &'static str;
    const UPDATE: &'static str;
    const DELETE: &'static str;
    const CREDITS: u32;
    fn render_id(db: &str) -> String;
    fn parse_id(raw: &str) -> Option<String>;
}

macro_rules! kinds {
    ($($ty:ident: $kind:literal, $noun:literal, $id:ident, $credits:literal, [$define:literal, $list:literal, $get:literal, $update:literal, $delete:literal];)*) => {$(
        pub struct $ty;
        impl ItemKind for $ty {
            const KIND: &'static str = $kind;
            const DEFINE: &'static str = $define;
            const DEFINE_SUMMARY: &'static str =
                concat!("Create or replace a styleguide ", $noun, " by name.");
            const LIST: &'static str = $list;
            const GET: &'static str = $get;
            const UPDATE: &'static str = $update;
            const DELETE: &'static str = $delete;
            const CREDITS: u32 = $credits;
            fn render_id(db: &str) -> String {
                $id::show(db)
            }
            fn parse_id(raw: &str) -> Option<String> {
                $id::parse(raw).map(|i| i.db())
            }
        }
    )*};
}

kinds! {
    Component: "component", "component", StyleComponentId, 3, ["define_component", "list_components", "get_component", "update_component", "delete_component"];
    Pattern: "pattern", "pattern", StylePatternId, 2, ["define_pattern", "list_patterns", "get_pattern", "update_pattern", "delete_pattern"];
    Voice: "voice", "voice rule", StyleVoiceId, 2, ["define_voice", "list_voice_rules", "get_voice_rule", "update_voice_rule", "delete_voice_rule"];
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Examples {
    #[serde(default, rename = "do")]
    pub do_: Vec<String>,
    #[serde(default)]
    pub dont: Vec<String>,
}

/// The details of a component, pattern or voice rule.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ItemSpec {
    #[serde(default)]
    pub description: String,
    /// Markdown.
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub rules: Vec<String>,
    #[serde(default)]
    pub examples: Examples,
    /// Free-form JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub props: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StyleItem {
    pub id: String,
    pub kind: String,
    pub name: String,
    #[serde(flatten)]
    pub spec: ItemSpec,
    pub created_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

fn item_of<K: ItemKind>(r: &ItemRow) -> StyleItem {
    StyleItem {
        id: K::render_id(&r.id),
        kind: r.kind.clone(),
        name: r.name.clone(),
        spec: serde_json::from_str(&r.spec).unwrap_or_default(),
        created_by: r.created_by.clone(),
        created_at: canopy_core::time::rfc3339(r.created_at),
        updated_at: canopy_core::time::rfc3339(r.updated_at),
    }
}

fn render_any(r: &ItemRow) -> StyleItem {
    match r.kind.as_str() {
        "component" => item_of::<Component>(r),
        "pattern" => item_of::<Pattern>(r),
        _ => item_of::<Voice>(r),
    }
}

fn check(name: &str, spec: &ItemSpec) -> Result<String, Error> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 100 {
        return Err(Error::validation(
            "name",
            "name must be 1 to 100 characters.",
        ));
    }
    let size = spec.body.len()
        + spec.description.len()
        + spec.rules.iter().map(String::len).sum::<usize>();
    if size > 100_000 {
        return Err(Error::validation(
            "body",
            "An item's text must be at most 100,000 characters.",
        ));
    }
    Ok(n.to_owned())
}

fn not_found<K: ItemKind>() -> Error {
    Error::not_found(&format!("Styleguide {}", K::KIND))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DefineInput {
    /// Unique per kind.
    pub name: String,
    #[serde(flatten)]
    pub spec: ItemSpec,
}

pub struct DefineItem<K>(PhantomData<K>);
impl<K: ItemKind> Operation for DefineItem<K> {
    const NAME: &'static str = K::DEFINE;
    const SUMMARY: &'static str = K::DEFINE_SUMMARY;
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::UPDATE;
    const CREDITS: u32 = K::CREDITS;
    type Input = DefineInput;
    type Output = Data<StyleItem>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let name = check(&i.name, &i.spec)?;
        let now = canopy_core::time::now_ms();
        let mut tx = cx.svc.store().begin().await?;
        let existing = find_item_tx(&mut tx, project, K::KIND, None, &name).await?;
        if existing.is_none() {
            crate::governance::quotas::check(
                &mut tx,
                cx,
                project,
                canopy_store::projects::Counted::StyleguideItems,
                1,
            )
            .await?;
        }
        let row = match existing {
            Some(mut old) => {
                old.spec = serde_json::to_string(&i.spec)?;
                old.updated_at = now;
                old
            }
            None => ItemRow {
                id: uuid::Uuid::now_v7().hyphenated().to_string(),
                org_id: cx.org().db(),
                project_id: project.db(),
                kind: K::KIND.into(),
                name,
                spec: serde_json::to_string(&i.spec)?,
                created_by: Some(author(cx)),
                created_at: now,
                updated_at: now,
            },
        };
        upsert_item(&mut tx, &row).await?;
        let item = item_of::<K>(&row);
        cx.commit(tx, Some(project), item.id.clone(), None).await?;
        Ok(Data { data: item })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListItemsInput {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

pub struct ListItems<K>(PhantomData<K>);
impl<K: ItemKind> Operation for ListItems<K> {
    const NAME: &'static str = K::LIST;
    const SUMMARY: &'static str = "List styleguide items of one kind, newest first.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = ListItemsInput;
    type Output = Paged<StyleItem>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let page = PageRequest::new(i.limit, i.cursor.as_deref())?;
        let rows = list_items(cx.svc.store(), project, K::KIND, &page).await?;
        Paged::try_from_rows(
            rows,
            &page,
            |r| (r.created_at, &r.id),
            |r| Ok::<_, Error>(item_of::<K>(&r)),
        )
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ItemRefInput {
    /// Id or name.
    pub id: String,
}

pub struct GetItem<K>(PhantomData<K>);
impl<K: ItemKind> Operation for GetItem<K> {
    const NAME: &'static str = K::GET;
    const SUMMARY: &'static str = "Read one styleguide item by id or name.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = ItemRefInput;
    type Output = Data<StyleItem>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let row = find_item(
            cx.svc.store(),
            project,
            K::KIND,
            K::parse_id(&i.id).as_deref(),
            &i.id,
        )
        .await?
        .ok_or_else(not_found::<K>)?;
        Ok(Data {
            data: item_of::<K>(&row),
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateItemInput {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub body: Option<String>,
    pub rules: Option<Vec<String>>,
    pub examples: Option<Examples>,
    pub props: Option<Value>,
}

pub struct UpdateItem<K>(PhantomData<K>);
impl<K: ItemKind> Operation for UpdateItem<K> {
    const NAME: &'static str = K::UPDATE;
    const SUMMARY: &'static str = "Change a styleguide item; omitted fields stay.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::UPDATE;
    type Input = UpdateItemInput;
    type Output = Data<StyleItem>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let mut tx = cx.svc.store().begin().await?;
        let mut row = find_item_tx(
            &mut tx,
            project,
            K::KIND,
            K::parse_id(&i.id).as_deref(),
            &i.id,
        )
        .await?
        .ok_or_else(not_found::<K>)?;
        let mut spec: ItemSpec = serde_json::from_str(&row.spec).unwrap_or_default();
        if let Some(v) = i.description {
            spec.description = v;
        }
        if let Some(v) = i.body {
            spec.body = v;
        }
        if let Some(v) = i.rules {
            spec.rules = v;
        }
        if let Some(v) = i.examples {
            spec.examples = v;
        }
        if i.props.is_some() {
            spec.props = i.props;
        }
        row.name = check(i.name.as_deref().unwrap_or(&row.name), &spec)?;
        row.spec = serde_json::to_string(&spec)?;
        row.updated_at = canopy_core::time::now_ms();
        upsert_item(&mut tx, &row).await.map_err(|e| {
            if e.code == canopy_core::Code::Conflict {
                Error::conflict("Another item of this kind has that name.").with_field("name")
            } else {
                e
            }
        })?;
        let item = item_of::<K>(&row);
        cx.commit(tx, Some(project), item.id.clone(), None).await?;
        Ok(Data { data: item })
    }
}

pub struct DeleteItem<K>(PhantomData<K>);
impl<K: ItemKind> Operation for DeleteItem<K> {
    const NAME: &'static str = K::DELETE;
    const SUMMARY: &'static str = "Delete a styleguide item.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::DESTROY;
    type Input = ItemRefInput;
    type Output = Data<Deleted>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let mut tx = cx.svc.store().begin().await?;
        let row = find_item_tx(
            &mut tx,
            project,
            K::KIND,
            K::parse_id(&i.id).as_deref(),
            &i.id,
        )
        .await?
        .ok_or_else(not_found::<K>)?;
        delete_item(&mut tx, project, &row.id).await?;
        let id = K::render_id(&row.id);
        cx.commit_deleted(tx, project, id).await
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DefineTokensInput {
    /// colours, typography, spacing, borders, shadows or breakpoints.
    pub section: String,
    /// Name → string, number or `{value, description}`.
    pub tokens: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TokenSection {
    pub section: String,
    pub tokens: serde_json::Map<String, Value>,
    pub updated_at: String,
}

pub struct DefineTokens;
impl Operation for DefineTokens {
    const NAME: &'static str = "define_tokens";
    const SUMMARY: &'static str = "Replace one section of design tokens.";
    const SCOPE: Option<Scope> = Some(Scope::Write);
    const HINTS: Hints = Hints::UPDATE;
    const CREDITS: u32 = 2;
    type Input = DefineTokensInput;
    type Output = Data<TokenSection>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let section = parse_enum(&i.section, "section", SECTIONS)?;
        if i.tokens.len() > 1_000 {
            return Err(Error::validation(
                "tokens",
                "At most 1,000 tokens per section.",
            ));
        }
        for (name, v) in &i.tokens {
            let ok = v.is_string()
                || v.is_number()
                || v.get("value")
                    .is_some_and(|x| x.is_string() || x.is_number());
            if !ok || name.is_empty() || name.len() > 100 {
                return Err(Error::validation(
                    &format!("tokens.{name}"),
                    "A token is a string or number value, or {\"value\", \"description\"}.",
                ));
            }
        }
        let now = canopy_core::time::now_ms();
        let row = TokenRow {
            project_id: project.db(),
            section: section.into(),
            tokens: Value::Object(i.tokens.clone()).to_string(),
            updated_at: now,
        };
        let mut tx = cx.svc.store().begin().await?;
        put_tokens(&mut tx, &row).await?;
        cx.commit(tx, Some(project), format!("tokens:{section}"), None)
            .await?;
        Ok(Data {
            data: TokenSection {
                section: section.into(),
                tokens: i.tokens,
                updated_at: canopy_core::time::rfc3339(now),
            },
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetTokensInput {
    /// One section; all when omitted.
    pub section: Option<String>,
}

async fn tokens_map(cx: &Cx<'_>, project: ProjectId) -> Result<BTreeMap<String, Value>, Error> {
    Ok(all_tokens(cx.svc.store(), project)
        .await?
        .into_iter()
        .map(|t| {
            (
                t.section,
                serde_json::from_str(&t.tokens).unwrap_or(Value::Null),
            )
        })
        .collect())
}

pub struct GetTokens;
impl Operation for GetTokens {
    const NAME: &'static str = "get_tokens";
    const SUMMARY: &'static str = "Read the design tokens, by section.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = GetTokensInput;
    type Output = Data<BTreeMap<String, Value>>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let mut map = tokens_map(cx, project).await?;
        if let Some(s) = &i.section {
            let s = parse_enum(s, "section", SECTIONS)?;
            let one = map
                .remove(s)
                .unwrap_or_else(|| Value::Object(Default::default()));
            map = BTreeMap::from([(s.to_owned(), one)]);
        }
        Ok(Data { data: map })
    }
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Styleguide {
    pub tokens: BTreeMap<String, Value>,
    pub components: Vec<StyleItem>,
    pub patterns: Vec<StyleItem>,
    pub voice: Vec<StyleItem>,
}

pub struct GetStyleguide;
impl Operation for GetStyleguide {
    const NAME: &'static str = "get_styleguide";
    const SUMMARY: &'static str =
        "The whole styleguide: tokens, components, patterns, voice rules.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = crate::op::NoInput;
    type Output = Data<Styleguide>;

    async fn call(cx: &Cx<'_>, _: Self::Input) -> Result<Self::Output, Error> {
        let project = current_project(cx).await?;
        let items = all_items(cx.svc.store(), project).await?;
        let pick = |k: &str| {
            items
                .iter()
                .filter(|r| r.kind == k)
                .map(render_any)
                .collect::<Vec<_>>()
        };
        Ok(Data {
            data: Styleguide {
                tokens: tokens_map(cx, project).await?,
                components: pick("component"),
                patterns: pick("pattern"),
                voice: pick("voice"),
            },
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchInput {
    /// Words that must all appear (case-insensitive).
    pub q: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct SearchHit {
    /// `token`, `component`, `pattern` or `voice`.
    pub kind: String,
    /// The item's id, or `section.name` for a token.
    pub id: String,
    pub name: String,
}

pub struct SearchStyleguide;
impl Operation for SearchStyleguide {
    const NAME: &'static str = "search_styleguide";
    const SUMMARY: &'static str = "Search tokens, components, patterns and voice rules.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = SearchInput;
    type Output = Data<Vec<SearchHit>>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        let words: Vec<String> = i.q.split_whitespace().map(str::to_lowercase).collect();
        if words.is_empty() {
            return Err(Error::validation("q", "q must contain at least one word."));
        }
        let matches = |hay: &str| {
            let hay = hay.to_lowercase();
            words.iter().all(|w| hay.contains(w.as_str()))
        };
        let project = current_project(cx).await?;
        let mut hits = Vec::new();
        for (section, tokens) in tokens_map(cx, project).await? {
            if let Value::Object(map) = tokens {
                for (name, v) in map {
                    if matches(&format!("{section} {name} {v}")) {
                        hits.push(SearchHit {
                            kind: "token".into(),
                            id: format!("{section}.{name}"),
                            name,
                        });
                    }
                }
            }
        }
        for r in all_items(cx.svc.store(), project).await? {
            if matches(&format!("{} {}", r.name, r.spec)) {
                let item = render_any(&r);
                hits.push(SearchHit {
                    kind: item.kind,
                    id: item.id,
                    name: item.name,
                });
            }
        }
        Ok(Data { data: hits })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SectionInput {
    /// colours, typography, spacing, borders, shadows or breakpoints.
    pub section: String,
}

pub struct GetTokenSection;
impl Operation for GetTokenSection {
    const NAME: &'static str = "get_token_section";
    const SUMMARY: &'static str = "Read one token section.";
    const SCOPE: Option<Scope> = Some(Scope::Read);
    const HINTS: Hints = Hints::READ;
    type Input = SectionInput;
    type Output = Data<BTreeMap<String, Value>>;

    async fn call(cx: &Cx<'_>, i: Self::Input) -> Result<Self::Output, Error> {
        GetTokens::call(
            cx,
            GetTokensInput {
                section: Some(i.section),
            },
        )
        .await
    }
}
