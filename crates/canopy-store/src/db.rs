//! Pools, transactions and migrations for both backends.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use canopy_core::{Code, Error};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Postgres, Sqlite, Transaction};

/// Runs `$body` with `$c` bound to the read pool of whichever backend is open.
macro_rules! on_db {
    ($store:expr, $c:ident => $body:expr) => {
        match &$store.db {
            $crate::db::Db::Sqlite { read: $c, .. } => $body,
            $crate::db::Db::Postgres($c) => $body,
        }
    };
}

/// Runs `$body` with `$c` bound to the write pool (one statement, its own transaction).
macro_rules! on_write {
    ($store:expr, $c:ident => $body:expr) => {
        match &$store.db {
            $crate::db::Db::Sqlite { write: $c, .. } => $body,
            $crate::db::Db::Postgres($c) => $body,
        }
    };
}

/// Runs `$body` with `$c` bound to the connection of an open transaction.
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::db::Tx::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::db::Tx::SqliteInline(t) => {
                let $c = &mut *t.conn;
                $body
            }
            $crate::db::Tx::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Db {
    /// SQLite allows one writer at a time. Writes go through a one-connection pool, so they
    /// queue in-process instead of spinning on `SQLITE_BUSY`; reads use a pool of their own.
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
    },
    Postgres(PgPool),
}

/// The one store handle; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) db: Db,
}

/// An open write transaction on either backend.
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    /// A SQLite write transaction whose `BEGIN` and `COMMIT` travel inside the first and the
    /// last query instead of a round trip each (see [`Store::begin_inline`]).
    SqliteInline(InlineTx),
    Postgres(Transaction<'static, Postgres>),
}

/// The writer connection of a [`Tx::SqliteInline`]. `open` from the query that carries the
/// `BEGIN` until one carries `COMMIT` or `ROLLBACK`; dropped while open (an error, a dropped
/// future), the connection is closed instead of going back to the pool, and closing it
/// rolls the transaction back.
pub struct InlineTx {
    pub(crate) conn: PoolConnection<Sqlite>,
    pub(crate) open: bool,
}

impl Drop for InlineTx {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

impl Tx {
    pub fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) | Tx::SqliteInline(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }

    pub async fn commit(self) -> Result<(), Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await.map_err(db_error),
            Tx::SqliteInline(mut t) => {
                if t.open {
                    sqlx::query("COMMIT")
                        .execute(&mut *t.conn)
                        .await
                        .map_err(db_error)?;
                    t.open = false;
                }
                Ok(())
            }
            Tx::Postgres(t) => t.commit().await.map_err(db_error),
        }
    }
}

/// Maps a database error to Canopy's error once: no row → 404, unique violation → 409,
/// anything else → 500 with the cause kept for the log.
pub fn db_error(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::RowNotFound => Error::new(Code::NotFound, "Not found."),
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            Error::conflict("A resource with these unique values already exists.").with_source(e)
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => Error::new(
            Code::Unavailable,
            "The database is busy or unavailable; retry shortly.",
        )
        .with_source(e),
        _ => Error::internal(e),
    }
}

fn migrate_error(e: sqlx::migrate::MigrateError) -> Error {
    Error::internal(e)
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Store, Error> {
        let opts = SqliteConnectOptions::from_str("sqlite:")
            .map_err(db_error)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // No ping before handing out a connection: these are in-process handles to a local
        // file, not sockets that can go stale, and the ping is a round trip to sqlx's worker
        // thread on every query.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts.clone())
            .await
            .map_err(db_error)?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts.read_only(true))
            .await;
        // A database file that does not exist yet cannot be opened read-only before the writer
        // has created it; the writer above has, so this only fails for real problems.
        let read = read.map_err(db_error)?;
        Ok(Store {
            db: Db::Sqlite { read, write },
        })
    }

    pub async fn open_postgres(url: &str, max_connections: u32) -> Result<Store, Error> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await
            .map_err(db_error)?;
        Ok(Store {
            db: Db::Postgres(pool),
        })
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite { .. } => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies every pending migration of this backend.
    pub async fn migrate(&self) -> Result<(), Error> {
        match &self.db {
            Db::Sqlite { write, .. } => sqlx::migrate!("./migrations/sqlite")
                .run(write)
                .await
                .map_err(migrate_error),
            Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres")
                .run(pool)
                .await
                .map_err(migrate_error),
        }
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx, Error> {
        match &self.db {
            Db::Sqlite { write, .. } => write.begin().await.map(Tx::Sqlite).map_err(db_error),
            Db::Postgres(pool) => pool.begin().await.map(Tx::Postgres).map_err(db_error),
        }
    }

    /// A write transaction for the engine's hot path. On SQLite it holds the writer
    /// connection with nothing sent yet: the first query through it must start with
    /// `BEGIN IMMEDIATE` (`engine::lock_run_fenced` does) and the last may end with `COMMIT`
    /// (`engine::write_run` does), saving two of a step's round trips to the connection's
    /// thread. On PostgreSQL an ordinary transaction.
    pub async fn begin_inline(&self) -> Result<Tx, Error> {
        match &self.db {
            Db::Sqlite { write, .. } => {
                let conn = write.acquire().await.map_err(db_error)?;
                Ok(Tx::SqliteInline(InlineTx { conn, open: false }))
            }
            Db::Postgres(pool) => pool.begin().await.map(Tx::Postgres).map_err(db_error),
        }
    }

    /// Starts a read-only transaction that sees one consistent snapshot: a deferred
    /// transaction on a SQLite read connection (WAL keeps its snapshot from the first read), a
    /// `REPEATABLE READ READ ONLY` one on PostgreSQL. Nothing is written through it; dropping it
    /// ends it.
    pub async fn begin_read(&self) -> Result<Tx, Error> {
        match &self.db {
            Db::Sqlite { read, .. } => read.begin().await.map(Tx::Sqlite).map_err(db_error),
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(db_error)?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                Ok(Tx::Postgres(tx))
            }
        }
    }

    /// Pool figures for `/metrics`: (open connections, idle connections).
    pub fn pool_stats(&self) -> (u32, u32) {
        match &self.db {
            Db::Sqlite { read, write } => (
                read.size() + write.size(),
                (read.num_idle() + write.num_idle()) as u32,
            ),
            Db::Postgres(p) => (p.size(), p.num_idle() as u32),
        }
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<(), Error> {
        on_db!(self, c => sqlx::query("SELECT 1").execute(c).await.map(|_| ()).map_err(db_error))
    }

    /// Writes a consistent snapshot of a SQLite database to `dest` while it stays online
    /// (`VACUUM INTO`). PostgreSQL deployments use `pg_dump` instead.
    pub async fn backup_to(&self, dest: &Path) -> Result<(), Error> {
        match &self.db {
            Db::Sqlite { write, .. } => {
                let dest = dest.to_str().ok_or_else(|| {
                    Error::validation("file", "The backup path must be valid UTF-8.")
                })?;
                sqlx::query("VACUUM INTO $1")
                    .bind(dest)
                    .execute(write)
                    .await
                    .map_err(db_error)?;
                Ok(())
            }
            Db::Postgres(_) => Err(Error::new(
                Code::NotSupported,
                "Online backup is for the embedded SQLite database. For PostgreSQL use pg_dump / pg_restore.",
            )),
        }
    }

    /// Checks a SQLite file's integrity (used before a restore).
    pub async fn integrity_check(&self) -> Result<(), Error> {
        let row: (String,) =
            on_db!(self, c => sqlx::query_as("PRAGMA integrity_check").fetch_one(c).await)
                .map_err(db_error)?;
        if row.0 == "ok" {
            Ok(())
        } else {
            Err(Error::new(
                Code::BadRequest,
                format!("integrity check failed: {}", row.0),
            ))
        }
    }

    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Db::Postgres(p) => p.close().await,
        }
    }
}
