//! The Canopy server as a library: settings, opening the store, and [`serve`], which `main`
//! and the tests both use (tests bind `127.0.0.1:0` and talk HTTP to it).

pub mod cli;
pub mod settings;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use canopy_core::Error;
use canopy_http::HttpConfig;
use canopy_services::Services;
use canopy_services::tenancy::Bootstrapped;
use canopy_store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use settings::Settings;

/// The SQLite file inside the data dir.
pub const DB_FILE: &str = "canopy.db";

/// Opens the configured database and applies pending migrations.
pub async fn open_store(s: &Settings) -> Result<Store, Error> {
    let store = match &s.database_url {
        Some(url) => Store::open_postgres(url, s.pg_max_connections).await?,
        None => {
            std::fs::create_dir_all(&s.data_dir)
                .map_err(|e| Error::internal(e).with_field("data_dir"))?;
            Store::open_sqlite(&s.data_dir.join(DB_FILE)).await?
        }
    };
    store.migrate().await?;
    Ok(store)
}

/// A store, its services and the application, ready to serve.
pub struct Prepared {
    pub store: Store,
    pub svc: Services,
    pub app: axum::Router,
    /// Set on the very first start: the admin key, to show once.
    pub bootstrapped: Option<Bootstrapped>,
    pub engine_workers: usize,
}

pub async fn prepare(s: &Settings) -> Result<Prepared, Error> {
    // Outbound clients (providers, http steps) use rustls with ring; install it once.
    canopy_runtime::init_tls();
    if s.mcp_conformance_fixtures && !s.bind.ip().is_loopback() {
        // Fixture mode answers /mcp without a key: never on an address others can reach.
        return Err(Error::validation(
            "bind",
            format!(
                "--conformance-fixtures serves /mcp without a key and needs a loopback --bind (e.g. 127.0.0.1:8080); got {}.",
                s.bind
            ),
        ));
    }
    let store = open_store(s).await?;
    let master = settings::master_key(s)?;
    let mut config = canopy_services::Config::for_backend(store.backend());
    config.default_rate_limit = s.rate_limit_per_minute;
    config.max_token_ttl_secs = s.token_max_ttl_secs;
    config
        .prices
        .extend(s.prices.iter().map(|(k, v)| (k.clone(), *v)));
    config
        .quotas
        .extend(s.quotas.iter().map(|(k, v)| (k.clone(), *v)));
    config.max_document_bytes = s.max_document_bytes;
    config.max_asset_bytes = s.max_asset_bytes;
    config.outbound = s.outbound.clone();
    config.model_prices = s.model_prices.clone();
    let blobs = match &s.blob_dir {
        Some(dir) => canopy_store::blobs::Blobs::local(dir)?,
        None => canopy_store::blobs::Blobs::local(&s.data_dir.join("blobs"))?,
    };
    let svc = Services::new(store.clone(), blobs, config, &master);
    let bootstrapped = canopy_services::tenancy::bootstrap_if_empty(&store).await?;
    if let Some(b) = &bootstrapped {
        write_admin_key(&s.data_dir, &b.admin_key)?;
    }
    let http = HttpConfig {
        max_body_bytes: s.max_body_bytes,
        public_url: s.public_url.clone(),
        mcp_conformance_fixtures: s.mcp_conformance_fixtures,
    };
    let app = canopy_http::app(svc.clone(), http);
    Ok(Prepared {
        store,
        svc,
        app,
        bootstrapped,
        engine_workers: s.engine_workers,
    })
}

/// Writes the first admin key to `<data-dir>/admin.key`, readable by the owner only.
fn write_admin_key(dir: &Path, key: &str) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(Error::internal)?;
    settings::write_private(&dir.join("admin.key"), format!("{key}\n").as_bytes())
}

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish for
/// up to `grace`, stops background work and closes the store.
pub async fn serve<F>(
    listener: TcpListener,
    p: Prepared,
    shutdown: F,
    grace: Duration,
) -> Result<(), Error>
where
    F: Future<Output = ()> + Send + 'static,
{
    let engine = start_engine(&p).await?;
    let token = CancellationToken::new();
    let tasks = tokio_util::task::TaskTracker::new();
    spawn_housekeeping(&tasks, &token, p.svc.clone());

    let stop = token.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop.cancel();
    });
    let serve_token = token.clone();
    let app = p.app;
    let mut server = tokio::spawn(async move {
        // Connect info gives keyless public routes a client address to rate-limit by.
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(serve_token.cancelled_owned())
            .await
    });
    tokio::select! {
        r = &mut server => {
            token.cancel();
            r.map_err(Error::internal)?.map_err(Error::internal)?;
        }
        _ = token.cancelled() => {
            tracing::info!("shutting down: no new connections; waiting for requests in flight");
            p.svc.begin_shutdown();
            if tokio::time::timeout(grace, &mut server).await.is_err() {
                tracing::warn!(grace_secs = grace.as_secs(), "requests still running after the grace period; closing them");
                server.abort();
            }
        }
    }
    tasks.close();
    tasks.wait().await;
    // Steps in flight finish (or are left to their lease, for another node to take over).
    engine.shutdown().await;
    if let Err(e) = p.svc.usage().flush(&p.store).await {
        tracing::warn!(error = %e, "could not flush usage counts at shutdown");
    }
    p.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Workers of the run engine in a serving process.
/// Starts the run engine on the server's store and hands it to the services.
async fn start_engine(p: &Prepared) -> Result<canopy_engine::Engine, Error> {
    let config = canopy_engine::EngineConfig {
        workers: p.engine_workers,
        executors: canopy_services::runtime::steps::executors(&p.svc)?,
        ..Default::default()
    };
    tracing::info!(node = %config.node_id, workers = config.workers, "starting the run engine");
    let engine = canopy_engine::Engine::start(p.store.clone(), config).await?;
    if !p.svc.attach_engine(engine.clone()) {
        engine.shutdown().await;
        return Err(Error::internal("these services already have a run engine"));
    }
    Ok(engine)
}

fn spawn_housekeeping(
    tasks: &tokio_util::task::TaskTracker,
    token: &CancellationToken,
    svc: Services,
) {
    let token = token.clone();
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut n: u64 = 0;
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tick.tick() => {}
            }
            n += 1;
            svc.expire_key_cache();
            if n.is_multiple_of(5) {
                canopy_http::observe::upkeep();
            }
            if n.is_multiple_of(5)
                && let Err(e) = svc.housekeeping().await
            {
                tracing::warn!(error = %e, "housekeeping failed");
            }
        }
    });
}

/// `canopy backup FILE`: an online, consistent copy of the SQLite database.
pub async fn cli_backup(s: &Settings, file: &Path) -> Result<(), Error> {
    if s.database_url.is_some() {
        return Err(Error::new(
            canopy_core::Code::NotSupported,
            "Backup is for the embedded SQLite database. For PostgreSQL use pg_dump (and pg_restore).",
        ));
    }
    if file.exists() {
        return Err(Error::validation(
            "file",
            format!("{} exists; choose a new file name.", file.display()),
        ));
    }
    let store = open_store(s).await?;
    store.backup_to(file).await?;
    store.close().await;
    println!("backup written to {}", file.display());
    Ok(())
}

/// `canopy restore FILE`: checks the backup, then puts it in place of the database. The server
/// must be stopped; the database being replaced is kept beside it as `canopy.db.before-restore`.
pub async fn cli_restore(s: &Settings, file: &Path) -> Result<(), Error> {
    if s.database_url.is_some() {
        return Err(Error::new(
            canopy_core::Code::NotSupported,
            "Restore is for the embedded SQLite database. For PostgreSQL use pg_restore.",
        ));
    }
    if !file.is_file() {
        return Err(Error::validation(
            "file",
            format!("{} is not a file.", file.display()),
        ));
    }
    // Check the backup on a scratch copy, so the check itself leaves nothing beside the backup.
    let scratch = s.data_dir.join(".restore-check.db");
    std::fs::create_dir_all(&s.data_dir).map_err(Error::internal)?;
    std::fs::copy(file, &scratch).map_err(Error::internal)?;
    let check = async {
        let store = Store::open_sqlite(&scratch).await?;
        let r = store.integrity_check().await;
        store.close().await;
        r
    }
    .await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", scratch.display()));
    }
    check.map_err(|e| {
        Error::validation(
            "file",
            format!(
                "{} is not a usable Canopy backup: {}",
                file.display(),
                e.message
            ),
        )
    })?;

    let db = s.data_dir.join(DB_FILE);
    if db.exists() {
        std::fs::rename(&db, s.data_dir.join(format!("{DB_FILE}.before-restore")))
            .map_err(Error::internal)?;
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::copy(file, &db).map_err(Error::internal)?;
    // Apply any migrations newer than the backup.
    open_store(s).await?.close().await;
    println!("restored {} into {}", file.display(), db.display());
    Ok(())
}

/// A project by id or slug, for the CLI.
pub async fn resolve_project(
    svc: &Services,
    org: canopy_core::OrgId,
    raw: &str,
) -> Result<String, Error> {
    if let Some(id) = canopy_core::ProjectId::parse(raw) {
        return Ok(id.to_string());
    }
    let row = canopy_store::projects::get_project_by_slug(svc.store(), org, raw).await?;
    row.and_then(|r| canopy_core::ProjectId::from_db(&r.id))
        .map(|p| p.to_string())
        .ok_or_else(|| Error::not_found(&format!("Project '{raw}'")))
}
