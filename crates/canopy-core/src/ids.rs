//! Typed resource ids. Each is a UUID (v7, so ids sort by creation time) that renders with its
//! resource's prefix (`prj_0190…`) and parses from either that form or a plain UUID, so the v1
//! surfaces (prefixed) and the Stagent surface (plain) accept each other's ids.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

macro_rules! id_types {
    ($($(#[$doc:meta])* $name:ident => $prefix:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Uuid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                $name(Uuid::now_v7())
            }

            /// The all-zero id, for actors that are not keys (the CLI).
            pub const fn nil() -> Self {
                $name(Uuid::nil())
            }

            /// Parses `prefix_<hex>` or a plain UUID; `None` for anything else (callers answer
            /// 404, since a malformed id names nothing this caller can see).
            pub fn parse(s: &str) -> Option<Self> {
                parse_prefixed(s, $prefix).map($name)
            }

            /// The form kept in the database: the hyphenated UUID.
            pub fn db(&self) -> String {
                self.0.hyphenated().to_string()
            }

            /// Reads the database form back.
            pub fn from_db(s: &str) -> Option<Self> {
                Uuid::parse_str(s).ok().map($name)
            }

            /// The prefixed form of a database id (the text unchanged if it is not one).
            pub fn show(db: &str) -> String {
                Self::from_db(db).map(|i| i.to_string()).unwrap_or_else(|| db.to_owned())
            }

            pub fn plain(&self) -> String {
                self.0.hyphenated().to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}_{}", $prefix, self.0.simple())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::parse(s).ok_or(InvalidId)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<str>::deserialize(d)?;
                Self::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "expected an id like {}_<32 hex digits> or a UUID", $prefix
                    ))
                })
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "description": concat!("An id: `", $prefix, "_` followed by 32 hex digits, or a plain UUID."),
                })
            }
        }
    )*};
}

/// A string that is not an id of the expected kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidId;

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid id")
    }
}

impl std::error::Error for InvalidId {}

fn parse_prefixed(s: &str, prefix: &str) -> Option<Uuid> {
    let body = match s.strip_prefix(prefix).and_then(|r| r.strip_prefix('_')) {
        Some(rest) => rest,
        None => s,
    };
    // `Uuid::try_parse` accepts simple, hyphenated, braced and urn forms; only the first two are ids.
    if body.len() != 32 && body.len() != 36 {
        return None;
    }
    Uuid::try_parse(body).ok()
}

id_types! {
    /// An organisation: the top tenant (Stackmint org, Minolith/StackBilt account).
    OrgId => "org";
    /// A project: Stackmint client, Minolith project, Stagent project.
    ProjectId => "prj";
    /// An API key (its id, never its secret).
    KeyId => "key";
    /// One audit record.
    AuditId => "aud";
    /// A context entry (Minolith context).
    ContextId => "ctx";
    /// A changelog entry.
    ChangelogEntryId => "ent";
    /// A changelog version.
    ChangelogVersionId => "ver";
    /// A feedback item.
    FeedbackId => "fbk";
    /// A note on a feedback item.
    FeedbackNoteId => "fbn";
    /// A styleguide component.
    StyleComponentId => "sgc";
    /// A styleguide pattern.
    StylePatternId => "sgp";
    /// A styleguide voice rule.
    StyleVoiceId => "sgv";
    /// An agent definition.
    AgentId => "agt";
    /// A curated agent template of the registry.
    RegistryAgentId => "agr";
    /// An uploaded document.
    DocumentId => "doc";
    /// A task (Minolith tasks).
    TaskId => "tsk";
    /// A note on a task (comment, status change, assignment, commit).
    TaskNoteId => "tsn";
    /// A project's task workflow.
    WorkflowId => "wfl";
    /// A team member (a person with a role per project).
    MemberId => "mbr";
    /// An invitation to the team.
    InviteId => "inv";
    /// A styleguide asset (an uploaded brand file).
    StyleAssetId => "sga";
    /// One execution of a definition (a bud or a branch) on the run engine.
    RunId => "run";
    /// A bud: one step definition.
    BudId => "bud";
    /// A branch: a graph of buds.
    BranchId => "brn";
    /// A job of the engine's queue (one step of one run, due at a time).
    JobId => "job";
    /// A runbook: a template of manual steps (Minolith runbooks).
    RunbookId => "rnb";
    /// A step of a runbook template.
    RunbookStepId => "rbs";
    /// A step of one runbook run (its frozen copy of a template step).
    RunStepId => "rrs";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_prefix_and_parses_both_forms() {
        let id = ProjectId::new();
        let shown = id.to_string();
        assert!(shown.starts_with("prj_") && shown.len() == 36, "{shown}");
        assert_eq!(ProjectId::parse(&shown), Some(id));
        assert_eq!(ProjectId::parse(&id.plain()), Some(id));
        assert_eq!(ProjectId::parse(&id.0.simple().to_string()), Some(id));
    }

    #[test]
    fn rejects_other_prefixes_and_garbage() {
        let id = ProjectId::new();
        assert_eq!(ProjectId::parse(&format!("key_{}", id.0.simple())), None);
        assert_eq!(ProjectId::parse("prj_123"), None);
        assert_eq!(ProjectId::parse(""), None);
        assert_eq!(ProjectId::parse(&format!("{{{}}}", id.plain())), None);
    }

    #[test]
    fn serde_round_trip() {
        let id = KeyId::new();
        let json = serde_json::to_string(&id).unwrap_or_default();
        let back: KeyId = serde_json::from_str(&json).unwrap_or_else(|_| KeyId::new());
        assert_eq!(back, id);
    }
}
