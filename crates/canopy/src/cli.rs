//! The command line. Key and project commands run the same operations as the API (through
//! `dispatch`, audited under the all-zero key id `key_000…0`), straight against the database.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "canopy",
    version,
    about = "One self-hosted server for the Stackmint, StackBilt Architect, Stagent and Minolith agent-platform APIs."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Where the embedded SQLite database, master key and admin key live.
    #[arg(long, global = true, env = "CANOPY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://…); without it Canopy uses SQLite in the data dir.
    #[arg(long, global = true, env = "CANOPY_DATABASE_URL")]
    pub database_url: Option<String>,
    /// A TOML config file (see docs/configuration.md).
    #[arg(long, global = true, env = "CANOPY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, global = true, env = "CANOPY_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, global = true, env = "CANOPY_BIND")]
    pub bind: Option<String>,
    /// Public base URL, used in error `docs` links.
    #[arg(long, global = true, env = "CANOPY_PUBLIC_URL")]
    pub public_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve {
        /// TEST ONLY: serve the MCP conformance suite's fixtures on /mcp without a key (the
        /// normal tools are not listed there). Refused unless --bind is a loopback address.
        #[arg(long)]
        conformance_fixtures: bool,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage orgs.
    Orgs {
        #[command(subcommand)]
        command: OrgsCommand,
    },
    /// Manage projects (Stackmint clients).
    Projects {
        #[command(subcommand)]
        command: ProjectsCommand,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Write a consistent snapshot of the SQLite database to FILE (the server may keep running).
    Backup { file: PathBuf },
    /// Replace the SQLite database with a backup FILE (stop the server first).
    Restore { file: PathBuf },
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Issue a key; prints it once.
    Create {
        #[arg(long)]
        name: Option<String>,
        /// Comma-separated scopes (admin, read, write, runtime, mcp, mcp.run, bud.run, ai:invoke).
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// Restrict the key to one project (id or slug).
        #[arg(long)]
        project: Option<String>,
        /// RFC 3339 expiry time.
        #[arg(long)]
        expires_at: Option<String>,
        /// Requests per minute for this key.
        #[arg(long)]
        rate_limit: Option<u32>,
        #[arg(long, default_value = "default")]
        org: String,
    },
    /// List keys (no secrets).
    List {
        #[arg(long, default_value = "default")]
        org: String,
    },
    /// Revoke a key by id (key_…).
    Revoke {
        id: String,
        #[arg(long, default_value = "default")]
        org: String,
    },
    /// Replace a key with a new one; the old one stops working.
    Rotate {
        id: String,
        #[arg(long, default_value = "default")]
        org: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// Create a project.
    Create {
        name: String,
        #[arg(long)]
        slug: Option<String>,
        #[arg(long, default_value = "default")]
        org: String,
    },
    /// List projects.
    List {
        #[arg(long, default_value = "default")]
        org: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgsCommand {
    /// Create an org and an org-wide admin key for it (printed once).
    Create {
        slug: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Change an org's settings.
    Update {
        slug: String,
        /// Requests per minute shared by all the org's keys; 0 removes the org-wide limit.
        #[arg(long)]
        rate_limit: u32,
    },
}
