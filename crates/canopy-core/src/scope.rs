//! What a key may do. `admin` grants everything; `write` also grants `read`; `mcp.run` also
//! grants `mcp`. Every other scope grants only itself. `docs/auth.md` lists what each allows.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::suggest::parse_enum;

macro_rules! scopes {
    ($($variant:ident => $name:literal, $bit:literal;)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Scope { $($variant,)* }

        impl Scope {
            pub const ALL: &'static [Scope] = &[$(Scope::$variant,)*];
            pub const fn as_str(self) -> &'static str {
                match self { $(Scope::$variant => $name,)* }
            }
            const fn bit(self) -> u16 {
                match self { $(Scope::$variant => 1 << $bit,)* }
            }
            pub fn from_name(s: &str) -> Option<Scope> {
                match s { $($name => Some(Scope::$variant),)* _ => None }
            }
        }
    };
}

scopes! {
    Admin => "admin", 0;
    Read => "read", 1;
    Write => "write", 2;
    Runtime => "runtime", 3;
    Mcp => "mcp", 4;
    McpRun => "mcp.run", 5;
    BudRun => "bud.run", 6;
    AiInvoke => "ai:invoke", 7;
}

impl Scope {
    /// Parses a scope name, answering an enum mistake with a suggestion.
    pub fn parse(s: &str, field: &str) -> Result<Scope, Error> {
        let names: Vec<&'static str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        parse_enum(s, field, &names).map(|n| Scope::from_name(n).unwrap_or(Scope::Read))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes, as held by a key.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u16);

impl Scopes {
    pub const fn empty() -> Self {
        Scopes(0)
    }

    pub fn with(mut self, s: Scope) -> Self {
        self.0 |= s.bit();
        self
    }

    pub fn has_exact(self, s: Scope) -> bool {
        self.0 & s.bit() != 0
    }

    /// Whether these scopes allow an operation that requires `needed`.
    pub fn allows(self, needed: Scope) -> bool {
        self.has_exact(Scope::Admin)
            || self.has_exact(needed)
            || (needed == Scope::Read && self.has_exact(Scope::Write))
            || (needed == Scope::Mcp && self.has_exact(Scope::McpRun))
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .iter()
            .copied()
            .filter(move |s| self.has_exact(*s))
    }

    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Scope::as_str).collect()
    }

    /// Parses a list of names (from input or the database).
    pub fn parse_list<S: AsRef<str>>(names: &[S], field: &str) -> Result<Scopes, Error> {
        names.iter().try_fold(Scopes::empty(), |acc, n| {
            Ok(acc.with(Scope::parse(n.as_ref(), field)?))
        })
    }

    /// The space-separated form kept in the database.
    pub fn to_db(self) -> String {
        self.names().join(" ")
    }

    /// Reads the database form; unknown names (from a newer version) are ignored.
    pub fn from_db(s: &str) -> Scopes {
        s.split_whitespace()
            .filter_map(Scope::from_name)
            .fold(Scopes::empty(), Scopes::with)
    }

    /// Whether every scope of `other` is also granted by `self` (a key can only mint keys
    /// within its own powers).
    pub fn covers(self, other: Scopes) -> bool {
        other.iter().all(|s| self.allows(s))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        iter.into_iter().fold(Scopes::empty(), Scopes::with)
    }
}

impl Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        Scopes::parse_list(&names, "scopes").map_err(|e| serde::de::Error::custom(&e.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implications() {
        let w = Scopes::empty().with(Scope::Write);
        assert!(w.allows(Scope::Read) && w.allows(Scope::Write) && !w.allows(Scope::Admin));
        let a = Scopes::empty().with(Scope::Admin);
        assert!(Scope::ALL.iter().all(|s| a.allows(*s)));
        let r = Scopes::empty().with(Scope::Read);
        assert!(!r.allows(Scope::Write) && !r.allows(Scope::Runtime));
        assert!(Scopes::empty().with(Scope::McpRun).allows(Scope::Mcp));
    }

    #[test]
    fn parse_suggests() {
        let err = Scope::parse("wirte", "scopes").err();
        assert_eq!(err.as_ref().map(|e| e.code), Some(crate::Code::InvalidType));
        assert_eq!(
            err.and_then(|e| e.suggestion.clone()),
            Some("Did you mean 'write'?".to_owned())
        );
    }

    #[test]
    fn db_round_trip() {
        let s = Scopes::empty().with(Scope::Read).with(Scope::BudRun);
        assert_eq!(Scopes::from_db(&s.to_db()), s);
    }
}
