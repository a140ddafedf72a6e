//! Bind values for queries whose SQL is assembled at run time (optional filters, cursors).
//! The SQL uses `$1…$n`; [`Args::push`] returns the next placeholder.

/// One bind value, typed so both backends encode it the same way.
#[derive(Clone, Debug)]
pub enum Arg {
    Text(String),
    Int(i64),
}

#[derive(Default, Debug)]
pub struct Args(pub Vec<Arg>);

impl Args {
    /// Adds a value and returns its placeholder (`$n`).
    pub fn push(&mut self, a: impl Into<Arg>) -> String {
        self.0.push(a.into());
        format!("${}", self.0.len())
    }
}

impl From<String> for Arg {
    fn from(s: String) -> Self {
        Arg::Text(s)
    }
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Text(s.to_owned())
    }
}

impl From<i64> for Arg {
    fn from(n: i64) -> Self {
        Arg::Int(n)
    }
}

/// Binds every value of an [`Args`] to a query (`query`, `query_as` or `query_scalar`).
macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args.0 {
            q = match a {
                $crate::args::Arg::Text(s) => q.bind(s),
                $crate::args::Arg::Int(n) => q.bind(n),
            };
        }
        q
    }};
}

/// Appends the keyset condition and order for newest-first pages over `(created_at, id)`.
pub(crate) fn keyset(
    sql: &mut String,
    args: &mut Args,
    page: &canopy_core::PageRequest,
    prefix: &str,
) {
    if let Some(c) = &page.after {
        let t = args.push(c.t);
        let id = args.push(c.id.clone());
        sql.push_str(&format!(
            " AND ({prefix}created_at, {prefix}id) < ({t}, {id})"
        ));
    }
    let n = args.push(page.fetch());
    sql.push_str(&format!(
        " ORDER BY {prefix}created_at DESC, {prefix}id DESC LIMIT {n}"
    ));
}
