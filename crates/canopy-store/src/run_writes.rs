//! Everything one engine transaction writes at its commit, sent together.
//!
//! On SQLite every statement is a round trip to the connection's own thread (two context
//! switches), and those hand-offs, not SQLite, were most of a step's cost. So the writes of
//! a commit go as one multi-statement query: sqlx binds `$n` by its number across all the
//! statements of a query, so each statement's placeholders are shifted past the ones before.
//! PostgreSQL takes one statement per query with bind values, so there they run in order.

use canopy_core::Error;
use sqlx::Row;

use crate::engine::{EventRow, Lease, NewJob, RunRow, STEP_COLS, StepRunRow};
use crate::{Tx, db_error};

/// A bind value that may be NULL and keeps its SQL type when it is (a NULL bound as text
/// would not go into a BIGINT column on PostgreSQL).
#[derive(Clone, Debug)]
pub(crate) enum V {
    Text(Option<String>),
    Int(Option<i64>),
}

impl V {
    pub(crate) fn text(s: &str) -> V {
        V::Text(Some(s.to_owned()))
    }
}

/// One statement with its own `$1…$n`.
struct Stmt {
    sql: String,
    args: Vec<V>,
}

/// The writes of one engine transaction (see [`write_run`]).
#[derive(Default)]
pub struct RunWrites<'a> {
    /// Delete this job through its lease first. If the lease is no longer ours nothing may be
    /// kept: [`write_run`] answers `false` and the caller drops (rolls back) the transaction.
    pub fence: Option<&'a Lease>,
    /// Step runs to delete, by `(step_id, item)`.
    pub removed: &'a [(String, i64)],
    /// Delete every job of the run (it ended); `jobs` is then ignored.
    pub delete_all_jobs: bool,
    pub jobs: &'a [NewJob],
    /// Inserted, or overwritten when they exist.
    pub step_runs: &'a [StepRunRow],
    pub events: &'a [EventRow],
    /// The run's mutable fields, when they changed.
    pub run: Option<&'a RunRow>,
    /// `created_at` of new jobs.
    pub now: i64,
    /// PostgreSQL notifications `(channel, payload)` to send if the transaction commits
    /// (SQLite has none: one process, woken in memory).
    pub notify: Vec<(&'a str, &'a str)>,
}

/// Writes `w` for run `run_id`; `false` when the fence's lease was lost (nothing of the
/// transaction may then be committed).
pub async fn write_run(tx: &mut Tx, run_id: &str, w: RunWrites<'_>) -> Result<bool, Error> {
    let stmts = statements(run_id, &w);
    if stmts.is_empty() && (w.notify.is_empty() || tx.backend() == crate::Backend::Sqlite) {
        return Ok(true);
    }
    match tx {
        Tx::Sqlite(t) => {
            let held = sqlite_batch(t, stmts, false).await?;
            Ok(w.fence.is_none() || held)
        }
        // An inline transaction checked its fence under the write lock when it began
        // (`lock_run_with_steps`), so it commits in the same query.
        Tx::SqliteInline(t) => {
            let commit = t.open;
            let held = sqlite_batch(&mut t.conn, stmts, commit).await?;
            t.open = !commit;
            Ok(w.fence.is_none() || held)
        }
        Tx::Postgres(t) => {
            // One statement: each write a data-modifying `WITH` member (they touch different
            // rows, so their order does not matter), the notifications in the final `SELECT`
            // (sent only if the transaction commits), and the fence's count as its answer.
            let (sql, args) = join_pg(stmts, w.fence.is_some(), &w.notify);
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for v in args {
                q = match v {
                    V::Text(s) => q.bind(s),
                    V::Int(i) => q.bind(i),
                };
            }
            let row = q.fetch_one(&mut **t).await.map_err(db_error)?;
            let held: i64 = row.try_get(0).map_err(db_error)?;
            Ok(held > 0)
        }
    }
}

/// Runs the statements as one query (then `COMMIT` with `commit`); `true` when it yielded a
/// row (only a fence's `DELETE … RETURNING` does).
async fn sqlite_batch(
    conn: &mut sqlx::SqliteConnection,
    stmts: Vec<Stmt>,
    commit: bool,
) -> Result<bool, Error> {
    let (mut sql, args) = join(stmts);
    if commit {
        sql.push_str(";\nCOMMIT");
    }
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for v in args {
        q = match v {
            V::Text(s) => q.bind(s),
            V::Int(i) => q.bind(i),
        };
    }
    let rows = q.fetch_all(conn).await.map_err(db_error)?;
    Ok(!rows.is_empty())
}

fn statements(run_id: &str, w: &RunWrites<'_>) -> Vec<Stmt> {
    let mut out = Vec::new();
    if let Some(l) = w.fence {
        out.push(Stmt {
            sql:
                "DELETE FROM jobs WHERE id = $1 AND lease_owner = $2 AND attempts = $3 RETURNING id"
                    .to_owned(),
            args: vec![
                V::text(&l.job_id),
                V::text(&l.owner),
                V::Int(Some(l.attempts)),
            ],
        });
    }
    for (step, item) in w.removed {
        out.push(Stmt {
            sql: "DELETE FROM step_runs WHERE run_id = $1 AND step_id = $2 AND item = $3"
                .to_owned(),
            args: vec![V::text(run_id), V::text(step), V::Int(Some(*item))],
        });
    }
    if w.delete_all_jobs {
        out.push(Stmt {
            sql: "DELETE FROM jobs WHERE run_id = $1".to_owned(),
            args: vec![V::text(run_id)],
        });
    } else {
        let rows: Vec<Vec<V>> = w.jobs.iter().map(|j| job_values(j, w.now)).collect();
        insert_stmts(
            &mut out,
            "INSERT INTO jobs (id, run_id, step_id, item, run_at, lease_owner, lease_until, attempts, created_at)",
            "",
            &rows,
        );
    }
    let rows: Vec<Vec<V>> = w.step_runs.iter().map(step_values).collect();
    insert_stmts(
        &mut out,
        &format!("INSERT INTO step_runs ({STEP_COLS})"),
        " ON CONFLICT (run_id, step_id, item) DO UPDATE SET status = excluded.status, attempt = excluded.attempt, \
         input = excluded.input, output = excluded.output, error = excluded.error, usage = excluded.usage, \
         started_at = excluded.started_at, finished_at = excluded.finished_at, attempt_base = excluded.attempt_base",
        &rows,
    );
    let rows: Vec<Vec<V>> = w.events.iter().map(event_values).collect();
    insert_stmts(
        &mut out,
        "INSERT INTO run_events (run_id, seq, type, step_id, item, data, at)",
        "",
        &rows,
    );
    if let Some(r) = w.run {
        out.push(Stmt {
            sql: "UPDATE runs SET status = $1, output = $2, error = $3, last_seq = $4, started_at = $5, finished_at = $6, updated_at = $7 WHERE id = $8".to_owned(),
            args: vec![
                V::text(&r.status),
                V::Text(r.output.clone()),
                V::Text(r.error.clone()),
                V::Int(Some(r.last_seq)),
                V::Int(r.started_at),
                V::Int(r.finished_at),
                V::Int(Some(r.updated_at)),
                V::text(&r.id),
            ],
        });
    }
    out
}

fn job_values(j: &NewJob, now: i64) -> Vec<V> {
    let (owner, until, attempts) = match &j.lease {
        Some((owner, until)) => (Some(owner.clone()), Some(*until), 1),
        None => (None, None, 0),
    };
    vec![
        V::text(&j.id),
        V::text(&j.run_id),
        V::text(&j.step_id),
        V::Int(Some(j.item)),
        // A leased job is due again only when its lease runs out, like a claimed one.
        V::Int(Some(until.unwrap_or(j.run_at))),
        V::Text(owner),
        V::Int(until),
        V::Int(Some(attempts)),
        V::Int(Some(now)),
    ]
}

fn step_values(r: &StepRunRow) -> Vec<V> {
    vec![
        V::text(&r.run_id),
        V::text(&r.step_id),
        V::Int(Some(r.item)),
        V::text(&r.status),
        V::Int(Some(r.attempt)),
        V::Text(r.input.clone()),
        V::Text(r.output.clone()),
        V::Text(r.error.clone()),
        V::Text(r.usage.clone()),
        V::Int(r.started_at),
        V::Int(r.finished_at),
        V::Int(Some(r.attempt_base)),
    ]
}

fn event_values(e: &EventRow) -> Vec<V> {
    vec![
        V::text(&e.run_id),
        V::Int(Some(e.seq)),
        V::text(&e.kind),
        V::Text(e.step_id.clone()),
        V::Int(e.item),
        V::text(&e.data),
        V::Int(Some(e.at)),
    ]
}

/// One multi-row `INSERT` per power-of-two chunk (see [`crate::args::pow2_chunks`]), so the
/// statement cache sees few distinct texts.
fn insert_stmts(out: &mut Vec<Stmt>, head: &str, tail: &str, rows: &[Vec<V>]) {
    for chunk in crate::args::pow2_chunks(rows) {
        let mut n = 0;
        let values: Vec<String> = chunk
            .iter()
            .map(|r| {
                let ps: Vec<String> = r
                    .iter()
                    .map(|_| {
                        n += 1;
                        format!("${n}")
                    })
                    .collect();
                format!("({})", ps.join(", "))
            })
            .collect();
        out.push(Stmt {
            sql: format!("{head} VALUES {}{tail}", values.join(", ")),
            args: chunk.iter().flatten().cloned().collect(),
        });
    }
}

/// One query of all statements, each one's placeholders shifted past those before it.
fn join(stmts: Vec<Stmt>) -> (String, Vec<V>) {
    let mut sql = String::new();
    let mut args = Vec::new();
    for s in stmts {
        if !sql.is_empty() {
            sql.push_str(";\n");
        }
        sql.push_str(&shift(&s.sql, args.len()));
        args.extend(s.args);
    }
    (sql, args)
}

/// PostgreSQL: `WITH w0 AS (…), w1 AS (…) SELECT <fence rows>[, pg_notify(…)]`. With a
/// fence, `w0` is its `DELETE … RETURNING` and the answer counts its rows; without, 1.
fn join_pg(stmts: Vec<Stmt>, fenced: bool, notify: &[(&str, &str)]) -> (String, Vec<V>) {
    let mut members = Vec::new();
    let mut args = Vec::new();
    for (i, s) in stmts.into_iter().enumerate() {
        members.push(format!("w{i} AS ({})", shift(&s.sql, args.len())));
        args.extend(s.args);
    }
    let mut select = if fenced {
        "(SELECT count(*) FROM w0)".to_owned()
    } else {
        "1::bigint".to_owned()
    };
    for (channel, payload) in notify {
        args.push(V::text(channel));
        args.push(V::text(payload));
        select.push_str(&format!(
            ", pg_notify(${}, ${})",
            args.len() - 1,
            args.len()
        ));
    }
    let sql = if members.is_empty() {
        format!("SELECT {select}")
    } else {
        format!("WITH {} SELECT {select}", members.join(", "))
    };
    (sql, args)
}

/// `$n` → `$(n + by)`. The SQL here is ours and binds every value, so a `$` is always a
/// placeholder.
fn shift(sql: &str, by: usize) -> String {
    if by == 0 {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + by).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{Stmt, V, join, join_pg, shift};

    #[test]
    fn placeholders_shift_past_earlier_statements() {
        assert_eq!(shift("a = $1 AND b = $12", 3), "a = $4 AND b = $15");
        assert_eq!(shift("no params", 5), "no params");
        let (sql, args) = join(vec![
            Stmt {
                sql: "DELETE FROM t WHERE a = $1 AND b = $2".into(),
                args: vec![V::Int(Some(1)), V::Int(Some(2))],
            },
            Stmt {
                sql: "UPDATE u SET c = $1".into(),
                args: vec![V::Int(Some(3))],
            },
        ]);
        assert_eq!(
            sql,
            "DELETE FROM t WHERE a = $1 AND b = $2;\nUPDATE u SET c = $3"
        );
        assert_eq!(args.len(), 3);
    }

    #[test]
    fn postgres_gets_one_statement_with_the_fence_count_and_notifications() {
        let stmts = || {
            vec![
                Stmt {
                    sql: "DELETE FROM jobs WHERE id = $1 RETURNING id".into(),
                    args: vec![V::text("j")],
                },
                Stmt {
                    sql: "UPDATE runs SET status = $1 WHERE id = $2".into(),
                    args: vec![V::text("running"), V::text("r")],
                },
            ]
        };
        let (sql, args) = join_pg(stmts(), true, &[("jobs", "node-1")]);
        assert_eq!(
            sql,
            "WITH w0 AS (DELETE FROM jobs WHERE id = $1 RETURNING id), \
             w1 AS (UPDATE runs SET status = $2 WHERE id = $3) \
             SELECT (SELECT count(*) FROM w0), pg_notify($4, $5)"
        );
        assert_eq!(args.len(), 5);
        let (sql, _) = join_pg(stmts(), false, &[]);
        assert!(sql.ends_with("SELECT 1::bigint"), "{sql}");
        let (sql, args) = join_pg(Vec::new(), false, &[("runs", "r")]);
        assert_eq!(sql, "SELECT 1::bigint, pg_notify($1, $2)");
        assert_eq!(args.len(), 2);
    }
}
