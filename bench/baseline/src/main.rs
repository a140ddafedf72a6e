//! Bare axum servers that Canopy's benchmarks are divided by.
//!
//! One binary, three modes chosen by argv:
//!
//! * `const PORT` — `GET /` answers the constant JSON `{"status":"ok"}`.
//! * `sqlite PORT DBFILE` — `GET /items/{id}` does one SQLite primary-key read
//!   (`SELECT id, name FROM items WHERE id = ?`) through a pool of 8 read connections
//!   and answers it as JSON. The table is seeded with 1000 rows at startup (WAL mode).
//! * `insert PORT DBFILE` — `POST /items` does one SQLite `INSERT` per request through a
//!   single-connection writer pool (WAL, `synchronous=NORMAL`) and answers the new id.
//!
//! Every server listens on 127.0.0.1 only.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// Rows seeded into `items` for the read baseline.
const SEED_ROWS: i64 = 1000;
/// Read connections in the `sqlite` mode's pool.
const READ_POOL: u32 = 8;

const USAGE: &str = "usage: canopy-bench-baseline const PORT\n       canopy-bench-baseline sqlite PORT DBFILE\n       canopy-bench-baseline insert PORT DBFILE";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (app, port) = match args.as_slice() {
        ["const", port] => (const_app(), *port),
        ["sqlite", port, db] => (sqlite_app(db).await, *port),
        ["insert", port, db] => (insert_app(db).await, *port),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Ok(port) = port.parse::<u16>() else {
        eprintln!("bad port {port:?}\n{USAGE}");
        return ExitCode::from(2);
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("bind the listening socket");
    println!("baseline listening on http://{addr}");
    axum::serve(listener, app).await.expect("serve");
    ExitCode::SUCCESS
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn internal(e: sqlx::Error) -> Response {
    json(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("{{\"error\":{}}}", json_string(&e.to_string())),
    )
}

/// A JSON string literal for `s` (the crate has no serde_json; the values are tiny).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn item_json(id: i64, name: &str) -> String {
    format!("{{\"id\":{id},\"name\":{}}}", json_string(name))
}

// ---- const ----

fn const_app() -> Router {
    Router::new().route(
        "/",
        get(|| async { json(StatusCode::OK, r#"{"status":"ok"}"#.to_owned()) }),
    )
}

// ---- sqlite (read) ----

fn options(db: &str) -> SqliteConnectOptions {
    SqliteConnectOptions::from_str(&format!("sqlite://{db}"))
        .expect("parse the database path")
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
}

async fn create_table(pool: &SqlitePool) {
    sqlx::query("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        .execute(pool)
        .await
        .expect("create the items table");
}

async fn sqlite_app(db: &str) -> Router {
    {
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options(db))
            .await
            .expect("open the database to seed it");
        create_table(&writer).await;
        let mut tx = writer.begin().await.expect("begin the seeding transaction");
        for id in 1..=SEED_ROWS {
            sqlx::query("INSERT OR REPLACE INTO items (id, name) VALUES (?, ?)")
                .bind(id)
                .bind(format!("item-{id}"))
                .execute(&mut *tx)
                .await
                .expect("seed a row");
        }
        tx.commit().await.expect("commit the seed rows");
        writer.close().await;
    }
    let pool = SqlitePoolOptions::new()
        .min_connections(READ_POOL)
        .max_connections(READ_POOL)
        .connect_with(options(db).read_only(true))
        .await
        .expect("open the read pool");
    Router::new()
        .route("/items/{id}", get(read_item))
        .with_state(pool)
}

async fn read_item(State(pool): State<SqlitePool>, Path(id): Path<i64>) -> Response {
    match sqlx::query_as::<_, (i64, String)>("SELECT id, name FROM items WHERE id = ?")
        .bind(id)
        .fetch_optional(&pool)
        .await
    {
        Ok(Some((id, name))) => json(StatusCode::OK, item_json(id, &name)),
        Ok(None) => json(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#.to_owned()),
        Err(e) => internal(e),
    }
}

// ---- insert ----

async fn insert_app(db: &str) -> Router {
    let pool = SqlitePoolOptions::new()
        .min_connections(1)
        .max_connections(1)
        .connect_with(options(db))
        .await
        .expect("open the writer pool");
    create_table(&pool).await;
    Router::new()
        .route("/items", post(insert_item))
        .with_state(pool)
}

async fn insert_item(State(pool): State<SqlitePool>) -> Response {
    match sqlx::query_scalar::<_, i64>("INSERT INTO items (name) VALUES (?) RETURNING id")
        .bind("bench")
        .fetch_one(&pool)
        .await
    {
        Ok(id) => json(StatusCode::CREATED, item_json(id, "bench")),
        Err(e) => internal(e),
    }
}
