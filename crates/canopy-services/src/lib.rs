//! Canopy's domain logic. Knows nothing of HTTP: surfaces call [`op::dispatch`] with typed
//! inputs and get typed outputs or a [`canopy_core::Error`]. Never writes SQL: asks the store.
//!
//! Layout:
//! - [`op`]: the [`op::Operation`] trait, [`op::Cx`] and [`op::dispatch`].
//! - [`auth`]: turning a credential into a [`canopy_core::Principal`] (keys, JWTs, key cache).
//! - [`limits`]: rate limits (in memory, or shared in PostgreSQL) and per-key usage counts.
//! - [`crypto`], [`jwt`]: key material, hashing, sealing secrets, RS256 tokens.
//! - [`tenancy`]: orgs, projects (clients), API keys, token exchange, first-start bootstrap.
//! - [`governance`]: the audit log.
//! - [`mcp`]: MCP sessions, tool selection by agent, the write-without-read window.
//! - [`runtime`]: Stackmint buds, branches and runs on the run engine.

pub mod agents;
pub mod auth;
pub mod crypto;
pub mod governance;
pub mod idempotency;
pub mod jwt;
pub mod knowledge;
pub mod limits;
pub mod mcp;
pub mod op;
pub mod runtime;
pub mod tenancy;
pub mod work;

use std::sync::Arc;

use canopy_core::Error;
use canopy_store::blobs::Blobs;
use canopy_store::{Backend, Store};
use tokio::sync::{OnceCell, Semaphore};

use crate::auth::KeyCache;
use crate::crypto::Sealer;
use crate::jwt::Signer;
use crate::limits::{RateLimiter, UsageMeter};

/// Settings the services need (the binary maps its config file / flags onto this).
#[derive(Clone, Debug)]
pub struct Config {
    /// Requests per minute for a key with no limit of its own.
    pub default_rate_limit: u32,
    /// Longest lifetime of an exchanged JWT, seconds.
    pub max_token_ttl_secs: i64,
    /// Keep authenticated keys in memory. Safe only when this process is the one server on
    /// its database (SQLite); on PostgreSQL every request reads the key so that a revocation
    /// made on any node holds on the next request everywhere.
    pub cache_keys: bool,
    /// Count rate limits in the database so several nodes share them (PostgreSQL).
    pub shared_rate_limits: bool,
    /// Credits per operation name (seed 003's prices by default; reads are always free).
    pub prices: std::collections::HashMap<String, u32>,
    /// Most rows of a kind a project may hold, by kind name (`context_entries`, `agents`,
    /// `changelog_entries`, `feedback_items`); generous defaults.
    pub quotas: std::collections::HashMap<String, i64>,
    /// Largest document upload, bytes.
    pub max_document_bytes: usize,
    /// Largest styleguide asset upload, bytes.
    pub max_asset_bytes: usize,
    /// Which private targets `http` steps and external MCP tools may reach.
    pub outbound: canopy_runtime::outbound::OutboundPolicy,
    /// Model prices per million tokens, for the cost of `llm` and `agent` steps.
    pub model_prices: canopy_runtime::providers::Prices,
}

impl Config {
    /// The price of an operation: the configured one, else its declared default.
    pub fn price(&self, op: &str, declared: u32) -> u32 {
        self.prices.get(op).copied().unwrap_or(declared)
    }
}

impl Config {
    pub fn for_backend(backend: Backend) -> Config {
        let single_node = backend == Backend::Sqlite;
        Config {
            default_rate_limit: 100,
            max_token_ttl_secs: 86_400,
            cache_keys: single_node,
            shared_rate_limits: !single_node,
            prices: governance::credits::default_prices(),
            quotas: governance::quotas::default_quotas(),
            max_document_bytes: 25 * 1024 * 1024,
            max_asset_bytes: 5 * 1024 * 1024,
            outbound: Default::default(),
            model_prices: Default::default(),
        }
    }
}

/// Every service, shared by all requests; cheap to clone.
#[derive(Clone)]
pub struct Services(Arc<Inner>);

pub(crate) struct Inner {
    store: Store,
    blobs: Blobs,
    quota_counts: governance::quotas::QuotaCounts,
    /// Each org's `default` project, for org-wide keys; cleared with the key cache.
    default_projects:
        std::sync::RwLock<std::collections::HashMap<canopy_core::OrgId, canopy_core::ProjectId>>,
    /// Concurrent context creates, committed in groups.
    entry_writer: knowledge::group::GroupWriter,
    /// Text extractions running at once (CPU-bound; bounded so uploads cannot starve requests).
    extraction_slots: Semaphore,
    config: Config,
    sealer: Sealer,
    signer: OnceCell<Signer>,
    keys: KeyCache,
    limiter: RateLimiter,
    usage: UsageMeter,
    /// The run engine, attached once the server starts it ([`Services::attach_engine`]).
    engine: std::sync::OnceLock<canopy_engine::Engine>,
    /// Operations by name, for `tool` and `agent` steps (installed by the doors at start).
    operations: std::sync::OnceLock<Arc<dyn runtime::steps::OperationCaller>>,
    /// Set when the server begins a graceful shutdown; long-lived streams end on it.
    stopping: tokio::sync::watch::Sender<bool>,
}

impl Services {
    pub fn new(store: Store, blobs: Blobs, config: Config, master_key: &[u8; 32]) -> Services {
        Services(Arc::new(Inner {
            limiter: RateLimiter::new(config.shared_rate_limits),
            store,
            blobs,
            extraction_slots: Semaphore::new(2),
            quota_counts: Default::default(),
            default_projects: Default::default(),
            entry_writer: Default::default(),
            config,
            sealer: Sealer::new(master_key),
            signer: OnceCell::new(),
            keys: KeyCache::default(),
            usage: UsageMeter::default(),
            engine: std::sync::OnceLock::new(),
            operations: std::sync::OnceLock::new(),
            stopping: tokio::sync::watch::Sender::new(false),
        }))
    }

    pub(crate) fn downgrade(&self) -> std::sync::Weak<Inner> {
        Arc::downgrade(&self.0)
    }

    pub(crate) fn upgrade(weak: &std::sync::Weak<Inner>) -> Option<Services> {
        weak.upgrade().map(Services)
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn blobs(&self) -> &Blobs {
        &self.0.blobs
    }

    /// The remembered `default` project of an org.
    pub(crate) fn default_project(
        &self,
        org: canopy_core::OrgId,
    ) -> Option<canopy_core::ProjectId> {
        let map = self
            .0
            .default_projects
            .read()
            .unwrap_or_else(|p| p.into_inner());
        map.get(&org).copied()
    }

    pub(crate) fn remember_default_project(
        &self,
        org: canopy_core::OrgId,
        p: canopy_core::ProjectId,
    ) {
        let mut map = self
            .0
            .default_projects
            .write()
            .unwrap_or_else(|p| p.into_inner());
        map.insert(org, p);
    }

    fn forget_default_projects(&self) {
        let mut map = self
            .0
            .default_projects
            .write()
            .unwrap_or_else(|p| p.into_inner());
        map.clear();
    }

    pub(crate) fn quota_counts(&self) -> &governance::quotas::QuotaCounts {
        &self.0.quota_counts
    }

    pub(crate) fn entry_writer(&self) -> &knowledge::group::GroupWriter {
        &self.0.entry_writer
    }

    pub(crate) fn extraction_slots(&self) -> &Semaphore {
        &self.0.extraction_slots
    }

    /// Hands the services the run engine the server started (once; later calls are ignored
    /// and answer false).
    pub fn attach_engine(&self, engine: canopy_engine::Engine) -> bool {
        self.0.engine.set(engine).is_ok()
    }

    /// Hands the services the operations by name (once; later calls are ignored).
    pub fn install_operations(&self, ops: Arc<dyn runtime::steps::OperationCaller>) {
        let _ = self.0.operations.set(ops);
    }

    pub(crate) fn operations(&self) -> Option<&Arc<dyn runtime::steps::OperationCaller>> {
        self.0.operations.get()
    }

    /// The run engine; `service_unavailable` where none runs (CLI commands).
    pub fn engine(&self) -> Result<&canopy_engine::Engine, Error> {
        self.0.engine.get().ok_or_else(|| {
            Error::new(
                canopy_core::Code::Unavailable,
                "The run engine is not running in this process.",
            )
        })
    }

    /// Says the server is shutting down: streams that would otherwise stay open (run events)
    /// end, so the graceful shutdown need not wait its whole grace period for them.
    pub fn begin_shutdown(&self) {
        self.0.stopping.send_replace(true);
    }

    /// Resolves once [`Services::begin_shutdown`] was called.
    pub async fn stopping(&self) {
        let mut rx = self.0.stopping.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn sealer(&self) -> &Sealer {
        &self.0.sealer
    }

    pub fn usage(&self) -> &UsageMeter {
        &self.0.usage
    }

    pub(crate) fn keys(&self) -> &KeyCache {
        &self.0.keys
    }

    pub(crate) fn limiter(&self) -> &RateLimiter {
        &self.0.limiter
    }

    /// The JWT signer, created on first use.
    pub async fn signer(&self) -> Result<&Signer, Error> {
        self.0
            .signer
            .get_or_try_init(|| Signer::load_or_create(&self.0.store, &self.0.sealer))
            .await
    }

    /// Periodic upkeep: flush usage counts, purge expired idempotency records and old
    /// rate-limit windows.
    pub async fn housekeeping(&self) -> Result<(), Error> {
        self.0.usage.flush(&self.0.store).await?;
        let now = canopy_core::time::now_ms();
        canopy_store::idempotency::purge_older_than(
            &self.0.store,
            now - limits::IDEMPOTENCY_TTL_MS,
        )
        .await?;
        if self.0.config.shared_rate_limits {
            // Windows are keyed by Unix seconds; keep the last five minutes.
            canopy_store::limits::purge_counters(
                &self.0.store,
                now / 1000 - 5 * limits::WINDOW_SECS,
            )
            .await?;
        }
        Ok(())
    }

    /// Forgets cached keys, so a revocation written by another process (the CLI on the same
    /// SQLite file) holds from the next tick on. Called every second by the server.
    pub fn expire_key_cache(&self) {
        self.0.keys.clear();
        self.forget_default_projects();
    }
}
