//! Settings: command-line flags, then `CANOPY_*` environment variables, then the TOML config
//! file, then defaults (the first that gives a value wins).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use canopy_core::Error;
use serde::Deserialize;

/// The `[server]`-less flat TOML config file. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub bind: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    pub log_format: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub rate_limit_per_minute: Option<u32>,
    pub token_max_ttl_secs: Option<i64>,
    pub shutdown_grace_secs: Option<u64>,
    pub pg_max_connections: Option<u32>,
    /// Credits per operation name, over seed 003's defaults (e.g. `create_task = 2`).
    pub prices: Option<std::collections::HashMap<String, u32>>,
    /// Per-project quotas over the defaults (e.g. `context_entries = 50000`).
    pub quotas: Option<std::collections::HashMap<String, i64>>,
    /// Where uploaded files live (default `<data_dir>/blobs`). Several nodes need a shared one.
    pub blob_dir: Option<PathBuf>,
    /// Largest document upload in bytes (default 25 MiB).
    pub max_document_bytes: Option<usize>,
    /// Largest styleguide asset upload in bytes (default 5 MiB).
    pub max_asset_bytes: Option<usize>,
    /// Base64 of 32 bytes. Prefer the `CANOPY_MASTER_KEY` variable for secrets.
    pub master_key: Option<String>,
    /// Let `http` steps and external MCP tools reach private, loopback and link-local
    /// addresses (default false; env `CANOPY_OUTBOUND_ALLOW_PRIVATE=1`).
    pub outbound_allow_private: Option<bool>,
    /// Hosts (or `host:port`) steps may reach even on private addresses.
    pub outbound_allow_hosts: Option<Vec<String>>,
    /// USD per million tokens by model (`[model_prices."gpt-4o-mini"]` with
    /// `input_per_mtok_usd` and `output_per_mtok_usd`).
    pub model_prices: Option<std::collections::HashMap<String, canopy_runtime::providers::Price>>,
    /// Run-engine worker tasks (steps executing at once on this node; default 8).
    pub engine_workers: Option<usize>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::validation(
                "config",
                format!("cannot read config file {}: {e}", path.display()),
            )
        })?;
        toml::from_str(&text).map_err(|e| {
            Error::validation("config", format!("config file {}: {e}", path.display()))
        })
    }
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    pub log_json: bool,
    pub max_body_bytes: usize,
    pub rate_limit_per_minute: u32,
    pub token_max_ttl_secs: i64,
    pub shutdown_grace_secs: u64,
    pub pg_max_connections: u32,
    pub master_key: Option<String>,
    /// Price overrides by operation name.
    pub prices: std::collections::HashMap<String, u32>,
    /// Quota overrides by kind.
    pub quotas: std::collections::HashMap<String, i64>,
    pub blob_dir: Option<PathBuf>,
    pub max_document_bytes: usize,
    pub max_asset_bytes: usize,
    pub outbound: canopy_runtime::outbound::OutboundPolicy,
    pub model_prices: canopy_runtime::providers::Prices,
    pub engine_workers: usize,
    /// Test only (`serve --conformance-fixtures`): `/mcp` serves the MCP conformance suite's
    /// fixtures without a key. Loopback binds only.
    pub mcp_conformance_fixtures: bool,
}

impl Settings {
    /// Defaults for a data dir (used by tests and as the base of resolution).
    pub fn for_data_dir(dir: impl Into<PathBuf>) -> Settings {
        Settings {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: dir.into(),
            database_url: None,
            public_url: None,
            log_json: false,
            max_body_bytes: 2 * 1024 * 1024,
            rate_limit_per_minute: 100,
            token_max_ttl_secs: 86_400,
            shutdown_grace_secs: 10,
            pg_max_connections: 16,
            master_key: None,
            prices: Default::default(),
            quotas: Default::default(),
            blob_dir: None,
            max_document_bytes: 25 * 1024 * 1024,
            max_asset_bytes: 5 * 1024 * 1024,
            outbound: Default::default(),
            model_prices: Default::default(),
            engine_workers: 8,
            mcp_conformance_fixtures: false,
        }
    }

    /// Resolves flags/env (already merged by clap) over the config file over defaults.
    pub fn resolve(flags: &crate::cli::Global, file: FileConfig) -> Result<Settings, Error> {
        let mut s = Settings::for_data_dir(
            flags
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./canopy-data")),
        );
        if let Some(b) = flags.bind.clone().or(file.bind) {
            s.bind = b.parse().map_err(|_| {
                Error::validation(
                    "bind",
                    format!("bind must be host:port, e.g. 127.0.0.1:8080; got '{b}'"),
                )
            })?;
        }
        s.database_url = flags
            .database_url
            .clone()
            .or(file.database_url)
            .filter(|u| !u.is_empty());
        s.public_url = flags.public_url.clone().or(file.public_url);
        let format = flags
            .log_format
            .clone()
            .or(file.log_format)
            .unwrap_or_else(|| "text".into());
        s.log_json = match format.as_str() {
            "json" => true,
            "text" => false,
            other => {
                return Err(Error::validation(
                    "log_format",
                    format!("log format must be 'text' or 'json'; got '{other}'"),
                ));
            }
        };
        if let Some(n) = file.max_body_bytes {
            s.max_body_bytes = n;
        }
        if let Some(n) = file.rate_limit_per_minute {
            s.rate_limit_per_minute = n.max(1);
        }
        if let Some(n) = file.token_max_ttl_secs {
            s.token_max_ttl_secs = n.clamp(60, 30 * 86_400);
        }
        if let Some(n) = file.shutdown_grace_secs {
            s.shutdown_grace_secs = n;
        }
        if let Some(p) = file.prices {
            s.prices = p;
        }
        if let Some(q) = file.quotas {
            s.quotas = q;
        }
        s.blob_dir = file.blob_dir;
        if let Some(n) = file.max_document_bytes {
            s.max_document_bytes = n.max(1);
        }
        if let Some(n) = file.max_asset_bytes {
            s.max_asset_bytes = n.max(1);
        }
        if let Some(n) = file.pg_max_connections {
            s.pg_max_connections = n.max(1);
        }
        s.outbound.allow_private = match std::env::var("CANOPY_OUTBOUND_ALLOW_PRIVATE") {
            Ok(v) if !v.is_empty() => matches!(v.as_str(), "1" | "true" | "yes"),
            _ => file.outbound_allow_private.unwrap_or(false),
        };
        s.outbound.allow_hosts = file.outbound_allow_hosts.unwrap_or_default();
        for (model, price) in file.model_prices.unwrap_or_default() {
            s.model_prices.set(&model, price);
        }
        if let Some(n) = file.engine_workers {
            s.engine_workers = n.clamp(1, 256);
        }
        s.master_key = std::env::var("CANOPY_MASTER_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .or(file.master_key);
        Ok(s)
    }
}

/// The master key that seals secrets at rest: `CANOPY_MASTER_KEY` / `master_key` when given
/// (required for several nodes on one PostgreSQL: they must share it), else
/// `<data-dir>/master.key`, created on first start with mode 0600.
pub fn master_key(s: &Settings) -> Result<[u8; 32], Error> {
    if let Some(k) = &s.master_key {
        return decode_master(k.trim());
    }
    let path = s.data_dir.join("master.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => decode_master(text.trim()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = canopy_services::crypto::Sealer::generate_master_key();
            std::fs::create_dir_all(&s.data_dir).map_err(Error::internal)?;
            let text = base64::engine::general_purpose::STANDARD.encode(key);
            write_private(&path, format!("{text}\n").as_bytes())?;
            Ok(key)
        }
        Err(e) => Err(Error::internal(e)),
    }
}

fn decode_master(text: &str) -> Result<[u8; 32], Error> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| Error::validation("master_key", "The master key must be base64 of exactly 32 bytes (e.g. `openssl rand -base64 32`)."))
}

/// Writes a file only its owner can read.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(Error::internal)?;
    f.write_all(bytes).map_err(Error::internal)?;
    Ok(())
}
