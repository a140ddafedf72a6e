//! Bind values for queries whose SQL is assembled at run time (optional filters, cursors).
//! The SQL uses `$1…$n`; [`Args::push`] returns the next placeholder.

use canopy_core::Error;

use crate::{Tx, db_error};

/// One bind value, typed so both backends encode it the same way.
#[derive(Clone, Debug)]
pub enum Arg {
    Text(String),
    Int(i64),
    NullText,
    NullInt,
}

#[derive(Default, Debug)]
pub struct Args(pub Vec<Arg>);

impl Args {
    /// Adds a value and returns its placeholder (`$n`).
    pub fn push(&mut self, a: impl Into<Arg>) -> String {
        self.0.push(a.into());
        format!("${}", self.0.len())
    }

    /// Adds a text value that may be NULL.
    pub fn push_opt(&mut self, a: Option<&str>) -> String {
        match a {
            Some(s) => self.push(s),
            None => {
                self.0.push(Arg::NullText);
                format!("${}", self.0.len())
            }
        }
    }

    /// Adds an integer value that may be NULL.
    pub fn push_opt_int(&mut self, a: Option<i64>) -> String {
        match a {
            Some(n) => self.push(n),
            None => {
                self.0.push(Arg::NullInt);
                format!("${}", self.0.len())
            }
        }
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
                $crate::args::Arg::NullText => q.bind(None::<String>),
                $crate::args::Arg::NullInt => q.bind(None::<i64>),
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
    keyset_on(
        sql,
        args,
        page,
        &format!("{prefix}created_at"),
        &format!("{prefix}id"),
    );
}

/// [`keyset`] over named time and id columns (an index other than the table's own).
pub(crate) fn keyset_on(
    sql: &mut String,
    args: &mut Args,
    page: &canopy_core::PageRequest,
    time: &str,
    id: &str,
) {
    if let Some(c) = &page.after {
        let t = args.push(c.t);
        let cid = args.push(c.id.clone());
        sql.push_str(&format!(" AND ({time}, {id}) < ({t}, {cid})"));
    }
    let n = args.push(page.fetch());
    sql.push_str(&format!(" ORDER BY {time} DESC, {id} DESC LIMIT {n}"));
}

/// Splits `items` into runs whose lengths are powers of two up to 128 (37 → 32 + 4 + 1), so a
/// multi-row statement comes in at most eight shapes and sqlx's statement cache keeps them all
/// prepared, instead of parsing a new statement for every group size.
pub(crate) fn pow2_chunks<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if items.is_empty() {
            return None;
        }
        let n = 1usize << items.len().min(128).ilog2();
        let (head, tail) = items.split_at(n);
        items = tail;
        Some(head)
    })
}

/// Runs one multi-row `INSERT` per chunk: `head` is the statement up to `VALUES`, `tail` what
/// follows the values; `row` pushes one row's values and returns their placeholders.
pub(crate) async fn insert_rows<T>(
    tx: &mut Tx,
    items: &[T],
    head: &str,
    tail: &str,
    row: impl Fn(&mut Args, &T) -> Vec<String>,
) -> Result<(), Error> {
    for chunk in pow2_chunks(items) {
        let mut args = Args::default();
        let values: Vec<String> = chunk
            .iter()
            .map(|r| format!("({})", row(&mut args, r).join(", ")))
            .collect();
        let sql = format!("{head} VALUES {}{tail}", values.join(", "));
        on_tx!(tx, c => bind_args!(sqlx::query(sqlx::AssertSqlSafe(sql)), args).execute(c).await.map(|r| r.rows_affected()))
            .map_err(db_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::pow2_chunks;

    #[test]
    fn chunks_are_powers_of_two() {
        let v: Vec<u32> = (0..300).collect();
        let sizes: Vec<usize> = pow2_chunks(&v).map(<[u32]>::len).collect();
        assert_eq!(sizes, vec![128, 128, 32, 8, 4]);
        let sizes: Vec<usize> = pow2_chunks(&v[..37]).map(<[u32]>::len).collect();
        assert_eq!(sizes, vec![32, 4, 1]);
        assert_eq!(pow2_chunks::<u32>(&[]).count(), 0);
    }
}
