//! The run engine's tables: runs, step runs, the append-only event log, the job queue and
//! approval requests. The engine (crate `canopy-engine`) owns the state machine; this module
//! only reads and writes rows.
//!
//! Locking order, everywhere: a run's row first ([`lock_run`]), then its jobs. The claim
//! ([`claim_job`]) is one statement of its own and never holds a job while waiting for a run,
//! so the order cannot invert into a deadlock.

use canopy_core::Error;
use sqlx::FromRow;
use sqlx::postgres::PgListener;

use crate::db::Db;
use crate::{Store, Tx, db_error};

pub use crate::run_writes::{RunWrites, write_run};

/// The PostgreSQL channel that says "a job became due".
pub const CHANNEL_JOBS: &str = "canopy_engine_jobs";
/// The PostgreSQL channel that carries the id of a run that reached a final state.
pub const CHANNEL_RUNS: &str = "canopy_engine_runs";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub id: String,
    pub org_id: String,
    pub project_id: String,
    pub kind: String,
    pub definition_id: Option<String>,
    pub definition_version: Option<i64>,
    /// JSON: the graph this run executes, as it was at submit.
    pub definition: String,
    pub status: String,
    pub input: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub last_seq: i64,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub updated_at: i64,
}

const RUN_COLS: &str = "id, org_id, project_id, kind, definition_id, definition_version, definition, status, input, output, error, last_seq, created_at, started_at, finished_at, updated_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StepRunRow {
    pub run_id: String,
    pub step_id: String,
    pub item: i64,
    pub status: String,
    pub attempt: i64,
    pub input: Option<String>,
    pub output: Option<String>,
    pub error: Option<String>,
    /// `{input_tokens, output_tokens, cost_usd, …}` over every attempt (JSON).
    pub usage: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// `attempt` when the step run was last reset by a retry or recover (0 if never): the
    /// retry budget counts the attempts after it.
    pub attempt_base: i64,
}

pub(crate) const STEP_COLS: &str = "run_id, step_id, item, status, attempt, input, output, error, usage, started_at, finished_at, attempt_base";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub run_id: String,
    pub seq: i64,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub step_id: Option<String>,
    pub item: Option<i64>,
    pub data: String,
    pub at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: String,
    pub run_id: String,
    pub step_id: String,
    pub item: i64,
    pub run_at: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub attempts: i64,
}

const JOB_COLS: &str = "id, run_id, step_id, item, run_at, lease_owner, lease_until, attempts";

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    pub run_id: String,
    pub step_id: String,
    pub item: i64,
    pub run_at: i64,
    /// Enqueued already claimed by `owner` until `lease_until` (the worker that made it due
    /// runs it next); counted as the job's first claim. `None`: free for any worker.
    pub lease: Option<(String, i64)>,
}

/// The fence of a claimed job: only the claim that holds it may write through it.
#[derive(Debug, Clone)]
pub struct Lease {
    pub job_id: String,
    pub owner: String,
    pub attempts: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApprovalRow {
    pub run_id: String,
    pub step_id: String,
    pub item: i64,
    pub prompt: Option<String>,
    pub requested_at: i64,
    pub expires_at: Option<i64>,
    pub decision: Option<String>,
    pub comment: Option<String>,
    pub decided_at: Option<i64>,
}

// ---- runs ----

pub async fn insert_run(tx: &mut Tx, r: &RunRow) -> Result<(), Error> {
    let sql = format!(
        "INSERT INTO runs ({RUN_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    );
    on_tx!(tx, c => sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&r.id).bind(&r.org_id).bind(&r.project_id).bind(&r.kind)
        .bind(&r.definition_id).bind(r.definition_version).bind(&r.definition)
        .bind(&r.status).bind(&r.input).bind(&r.output).bind(&r.error).bind(r.last_seq)
        .bind(r.created_at).bind(r.started_at).bind(r.finished_at).bind(r.updated_at)
        .execute(c).await.map(|_| ()))
    .map_err(db_error)
}

/// Reads a run inside a transaction and locks its row until commit (PostgreSQL
/// `FOR UPDATE`; SQLite's single writer already serializes every write transaction).
pub async fn lock_run(tx: &mut Tx, id: &str) -> Result<Option<RunRow>, Error> {
    match tx {
        Tx::Postgres(t) => {
            let sql = format!("SELECT {RUN_COLS} FROM runs WHERE id = $1 FOR UPDATE");
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(&mut **t)
                .await
        }
        Tx::Sqlite(_) | Tx::SqliteInline(_) => {
            let sql = format!("SELECT {RUN_COLS} FROM runs WHERE id = $1");
            on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(c)
                .await)
        }
    }
    .map_err(db_error)
}

/// [`lock_run`] and the run's step runs (unordered), the step runs packed in one column, a
/// JSON list the database builds; on SQLite in one round trip with the run. On SQLite every
/// statement and every row of a result crosses from the connection's thread on its own, and
/// a run may have hundreds of step runs (a runbook run has one per step).
///
/// A [`Tx::SqliteInline`] starts here: `BEGIN IMMEDIATE` goes in the same query, and so
/// does the check that `fence` still holds its job. Under the write lock nobody can take the
/// job afterwards, so the commit may travel with the writes. `None` (the transaction rolled
/// back) when the run is gone or the lease is lost; other transactions leave the fence to
/// [`write_run`].
pub async fn lock_run_with_steps(
    tx: &mut Tx,
    id: &str,
    fence: Option<&Lease>,
) -> Result<Option<(RunRow, Vec<StepRunRow>)>, Error> {
    const COLS: &str = "s.step_id, s.item, s.status, s.attempt, s.input, s.output, s.error, \
                        s.usage, s.started_at, s.finished_at, s.attempt_base";
    let row = match tx {
        // Two statements: a `FOR UPDATE` that waits for another transaction's lock reads the
        // run row as that one committed it, but a subquery of the same statement keeps the
        // snapshot taken before the wait, and would miss the step runs it wrote.
        Tx::Postgres(_) => {
            let Some(run) = lock_run(tx, id).await? else {
                return Ok(None);
            };
            let sql = format!(
                "SELECT COALESCE(json_agg(json_build_array({COLS})), '[]')::text \
                 FROM step_runs s WHERE s.run_id = $1"
            );
            let packed: String = on_tx!(tx, c => sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(id).fetch_one(c).await)
            .map_err(db_error)?;
            let steps = unpack_steps(&run.id, &packed)?;
            Some((run, steps))
        }
        Tx::Sqlite(t) => {
            let sql = format!(
                "SELECT {RUN_COLS}, (SELECT json_group_array(json_array({COLS})) \
                 FROM step_runs s WHERE s.run_id = runs.id) AS packed_steps \
                 FROM runs WHERE id = $1"
            );
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(&mut **t)
                .await
                .map_err(db_error)?;
            row.map(|r| unpack_run(&r)).transpose()?
        }
        Tx::SqliteInline(t) => {
            let held = if fence.is_some() {
                "(SELECT count(*) FROM jobs WHERE id = $2 AND lease_owner = $3 AND attempts = $4)"
            } else {
                "1"
            };
            let sql = format!(
                "BEGIN IMMEDIATE;\nSELECT {RUN_COLS}, (SELECT json_group_array(json_array({COLS})) \
                 FROM step_runs s WHERE s.run_id = runs.id) AS packed_steps, {held} AS fence_held \
                 FROM runs WHERE id = $1"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id);
            if let Some(l) = fence {
                q = q.bind(&l.job_id).bind(&l.owner).bind(l.attempts);
            }
            t.open = true;
            let row = q.fetch_optional(&mut *t.conn).await.map_err(db_error)?;
            let held = row
                .as_ref()
                .and_then(|r| sqlx::Row::try_get::<i64, _>(r, "fence_held").ok())
                .is_some_and(|n| n > 0);
            if !held {
                sqlx::query("ROLLBACK")
                    .execute(&mut *t.conn)
                    .await
                    .map_err(db_error)?;
                t.open = false;
                return Ok(None);
            }
            row.map(|r| unpack_run(&r)).transpose()?
        }
    };
    Ok(row)
}

/// A run row with its packed step runs (see [`lock_run_with_steps`]).
fn unpack_run<'r, R>(row: &'r R) -> Result<(RunRow, Vec<StepRunRow>), Error>
where
    R: sqlx::Row,
    RunRow: sqlx::FromRow<'r, R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    &'static str: sqlx::ColumnIndex<R>,
{
    let run = RunRow::from_row(row).map_err(db_error)?;
    let packed: String = row.try_get("packed_steps").map_err(db_error)?;
    let steps = unpack_steps(&run.id, &packed)?;
    Ok((run, steps))
}

/// Step runs from the JSON list of arrays the database packed them into.
fn unpack_steps(run_id: &str, packed: &str) -> Result<Vec<StepRunRow>, Error> {
    type Packed = (
        String,
        i64,
        String,
        i64,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<i64>,
        i64,
    );
    let packed: Vec<Packed> = serde_json::from_str(packed)
        .map_err(|e| Error::internal(format!("unreadable packed step runs: {e}")))?;
    Ok(packed
        .into_iter()
        .map(|p| StepRunRow {
            run_id: run_id.to_owned(),
            step_id: p.0,
            item: p.1,
            status: p.2,
            attempt: p.3,
            input: p.4,
            output: p.5,
            error: p.6,
            usage: p.7,
            started_at: p.8,
            finished_at: p.9,
            attempt_base: p.10,
        })
        .collect())
}

pub async fn get_run(store: &Store, id: &str) -> Result<Option<RunRow>, Error> {
    let sql = format!("SELECT {RUN_COLS} FROM runs WHERE id = $1");
    on_db!(store, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(c).await)
        .map_err(db_error)
}

/// Only the status (the cheap read behind waiting for a run to finish).
pub async fn get_run_status(store: &Store, id: &str) -> Result<Option<String>, Error> {
    on_db!(store, c => sqlx::query_scalar("SELECT status FROM runs WHERE id = $1").bind(id).fetch_optional(c).await)
        .map_err(db_error)
}

// ---- step runs ----

pub async fn list_step_runs(store: &Store, run_id: &str) -> Result<Vec<StepRunRow>, Error> {
    let sql = format!("SELECT {STEP_COLS} FROM step_runs WHERE run_id = $1 ORDER BY step_id, item");
    on_db!(store, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(run_id).fetch_all(c).await)
        .map_err(db_error)
}

pub async fn list_step_runs_tx(tx: &mut Tx, run_id: &str) -> Result<Vec<StepRunRow>, Error> {
    let sql = format!("SELECT {STEP_COLS} FROM step_runs WHERE run_id = $1 ORDER BY step_id, item");
    on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(run_id).fetch_all(c).await)
        .map_err(db_error)
}

// ---- events ----

/// Events of a run with `seq > after`, oldest first, at most `limit`.
pub async fn list_events(
    store: &Store,
    run_id: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<EventRow>, Error> {
    on_db!(store, c => sqlx::query_as(
        "SELECT run_id, seq, type, step_id, item, data, at FROM run_events WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    ).bind(run_id).bind(after).bind(limit).fetch_all(c).await)
    .map_err(db_error)
}

// ---- jobs ----

/// Claims the job due first: leases it to `owner` until `lease_until` (its `run_at` moves
/// there too, so an abandoned lease is simply due again) and counts the claim.
///
/// PostgreSQL skips rows another claim has locked (`FOR UPDATE SKIP LOCKED`), so concurrent
/// workers on any node take different jobs without waiting. On SQLite the statement runs on
/// the single writer connection, which makes select-and-update atomic.
pub async fn claim_job(
    store: &Store,
    owner: &str,
    now: i64,
    lease_until: i64,
) -> Result<Option<JobRow>, Error> {
    match &store.db {
        Db::Postgres(p) => {
            let sql = format!(
                "UPDATE jobs SET lease_owner = $1, lease_until = $2, run_at = $2, attempts = attempts + 1 \
                 WHERE id = (SELECT id FROM jobs WHERE run_at <= $3 ORDER BY run_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 RETURNING {JOB_COLS}"
            );
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(owner)
                .bind(lease_until)
                .bind(now)
                .fetch_optional(p)
                .await
        }
        Db::Sqlite { write, .. } => {
            let sql = format!(
                "UPDATE jobs SET lease_owner = $1, lease_until = $2, run_at = $2, attempts = attempts + 1 \
                 WHERE id = (SELECT id FROM jobs WHERE run_at <= $3 ORDER BY run_at LIMIT 1) \
                 RETURNING {JOB_COLS}"
            );
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(owner)
                .bind(lease_until)
                .bind(now)
                .fetch_optional(write)
                .await
        }
    }
    .map_err(db_error)
}

/// Extends a lease; `false` when it is no longer ours (taken over, or the run was cancelled).
pub async fn heartbeat(store: &Store, lease: &Lease, lease_until: i64) -> Result<bool, Error> {
    let n = on_write!(store, c => sqlx::query(
        "UPDATE jobs SET lease_until = $1, run_at = $1 WHERE id = $2 AND lease_owner = $3 AND attempts = $4",
    ).bind(lease_until).bind(&lease.job_id).bind(&lease.owner).bind(lease.attempts)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(n == 1)
}

/// Extends a lease inside a transaction; the row stays locked until commit, so no claim can
/// take the job meanwhile. `false` when the lease is no longer ours.
pub async fn extend_lease_tx(tx: &mut Tx, lease: &Lease, lease_until: i64) -> Result<bool, Error> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE jobs SET lease_until = $1, run_at = $1 WHERE id = $2 AND lease_owner = $3 AND attempts = $4",
    ).bind(lease_until).bind(&lease.job_id).bind(&lease.owner).bind(lease.attempts)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(n == 1)
}

/// Deletes a job through its lease; `false` when the lease is no longer ours.
pub async fn delete_leased_job(tx: &mut Tx, lease: &Lease) -> Result<bool, Error> {
    let n = on_tx!(tx, c => sqlx::query(
        "DELETE FROM jobs WHERE id = $1 AND lease_owner = $2 AND attempts = $3",
    ).bind(&lease.job_id).bind(&lease.owner).bind(lease.attempts)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(n == 1)
}

/// Releases a leased job and makes it due at `run_at` (a retry's backoff, a timer);
/// `false` when the lease is no longer ours.
pub async fn reschedule_leased_job(tx: &mut Tx, lease: &Lease, run_at: i64) -> Result<bool, Error> {
    let n = on_tx!(tx, c => sqlx::query(
        "UPDATE jobs SET run_at = $1, lease_owner = NULL, lease_until = NULL WHERE id = $2 AND lease_owner = $3 AND attempts = $4",
    ).bind(run_at).bind(&lease.job_id).bind(&lease.owner).bind(lease.attempts)
    .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)?;
    Ok(n == 1)
}

/// The `run_at` of a parked job: one of a paused run, held out of every claim until the run
/// is resumed. Far enough ahead never to fall due, small enough that arithmetic on it does
/// not overflow.
pub const PARKED_AT: i64 = i64::MAX / 4;

/// Releases a leased job as parked (its run is paused); `false` when the lease is no longer
/// ours.
pub async fn park_leased_job(tx: &mut Tx, lease: &Lease) -> Result<bool, Error> {
    reschedule_leased_job(tx, lease, PARKED_AT).await
}

/// Makes every parked job of a run due at `now` (the run was resumed); answers how many.
pub async fn unpark_run_jobs(tx: &mut Tx, run_id: &str, now: i64) -> Result<u64, Error> {
    on_tx!(tx, c => sqlx::query("UPDATE jobs SET run_at = $1 WHERE run_id = $2 AND run_at >= $3 AND lease_owner IS NULL")
        .bind(now).bind(run_id).bind(PARKED_AT)
        .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)
}

/// Deletes the job of one step (an approval's timeout timer once a decision came).
pub async fn delete_step_job(
    tx: &mut Tx,
    run_id: &str,
    step_id: &str,
    item: i64,
) -> Result<u64, Error> {
    on_tx!(tx, c => sqlx::query("DELETE FROM jobs WHERE run_id = $1 AND step_id = $2 AND item = $3")
        .bind(run_id).bind(step_id).bind(item)
        .execute(c).await.map(|r| r.rows_affected()))
    .map_err(db_error)
}

/// When the next job falls due (for a worker deciding how long to sleep).
pub async fn next_due(store: &Store) -> Result<Option<i64>, Error> {
    on_db!(store, c => sqlx::query_scalar("SELECT MIN(run_at) FROM jobs").fetch_one(c).await)
        .map_err(db_error)
}

/// Jobs of one run (tests and diagnostics).
pub async fn list_run_jobs(store: &Store, run_id: &str) -> Result<Vec<JobRow>, Error> {
    let sql = format!("SELECT {JOB_COLS} FROM jobs WHERE run_id = $1 ORDER BY run_at");
    on_db!(store, c => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(run_id).fetch_all(c).await)
        .map_err(db_error)
}

// ---- approvals ----

pub async fn upsert_approval(tx: &mut Tx, a: &ApprovalRow) -> Result<(), Error> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO run_approvals (run_id, step_id, item, prompt, requested_at, expires_at, decision, comment, decided_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (run_id, step_id, item) DO UPDATE SET prompt = excluded.prompt, requested_at = excluded.requested_at, \
         expires_at = excluded.expires_at, decision = excluded.decision, comment = excluded.comment, decided_at = excluded.decided_at",
    )
    .bind(&a.run_id).bind(&a.step_id).bind(a.item).bind(&a.prompt).bind(a.requested_at)
    .bind(a.expires_at).bind(&a.decision).bind(&a.comment).bind(a.decided_at)
    .execute(c).await.map(|_| ()))
    .map_err(db_error)
}

pub async fn list_approvals(store: &Store, run_id: &str) -> Result<Vec<ApprovalRow>, Error> {
    on_db!(store, c => sqlx::query_as(
        "SELECT run_id, step_id, item, prompt, requested_at, expires_at, decision, comment, decided_at \
         FROM run_approvals WHERE run_id = $1 ORDER BY step_id, item",
    ).bind(run_id).fetch_all(c).await)
    .map_err(db_error)
}

pub async fn list_approvals_tx(tx: &mut Tx, run_id: &str) -> Result<Vec<ApprovalRow>, Error> {
    on_tx!(tx, c => sqlx::query_as(
        "SELECT run_id, step_id, item, prompt, requested_at, expires_at, decision, comment, decided_at \
         FROM run_approvals WHERE run_id = $1 ORDER BY step_id, item",
    ).bind(run_id).fetch_all(c).await)
    .map_err(db_error)
}

// ---- cross-node wake-ups ----

/// Sends `payload` on `channel` when the transaction commits (PostgreSQL `NOTIFY`); SQLite
/// has one process, whose engine wakes its workers in memory, so there it does nothing.
pub async fn notify(tx: &mut Tx, channel: &str, payload: &str) -> Result<(), Error> {
    if let Tx::Postgres(t) = tx {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(&mut **t)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

/// A subscription to the engine's channels on a dedicated PostgreSQL connection.
pub struct Listener(PgListener);

/// One notification: its channel and payload.
#[derive(Debug, Clone)]
pub struct Notification {
    pub channel: String,
    pub payload: String,
}

/// Listens on [`CHANNEL_JOBS`] and [`CHANNEL_RUNS`]; `None` on SQLite (nothing to listen to).
pub async fn listen(store: &Store) -> Result<Option<Listener>, Error> {
    let Db::Postgres(pool) = &store.db else {
        return Ok(None);
    };
    let mut l = PgListener::connect_with(pool).await.map_err(db_error)?;
    l.listen_all([CHANNEL_JOBS, CHANNEL_RUNS])
        .await
        .map_err(db_error)?;
    Ok(Some(Listener(l)))
}

impl Listener {
    /// The next notification. After a lost connection sqlx reconnects and answers `None`
    /// once, since notifications sent meanwhile are gone: the caller should then re-check.
    pub async fn recv(&mut self) -> Result<Option<Notification>, Error> {
        let n = self.0.try_recv().await.map_err(db_error)?;
        Ok(n.map(|n| Notification {
            channel: n.channel().to_owned(),
            payload: n.payload().to_owned(),
        }))
    }
}
