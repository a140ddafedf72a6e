//! `canopy`: the server and its admin commands.

use std::process::ExitCode;
use std::time::Duration;

use canopy::cli::{Cli, Command, KeysCommand, OrgsCommand, ProjectsCommand};
use canopy::settings::{FileConfig, Settings};
use canopy_core::{CredentialKind, Error, KeyId, OrgId, Principal, Scope, Scopes};
use canopy_services::Services;
use canopy_services::op::{Operation, dispatch};
use canopy_services::tenancy::clients::{
    CreateClient, CreateClientInput, ListClients, ListClientsInput,
};
use canopy_services::tenancy::keys::{
    CreateAccessKey, CreateAccessKeyInput, KeyIdInput, ListAccessKeys, ListAccessKeysInput,
    RevokeAccessKey, RotateAccessKey,
};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let file = match &cli.global.config {
        Some(path) => match FileConfig::load(path) {
            Ok(f) => f,
            Err(e) => return fail(e),
        },
        None => FileConfig::default(),
    };
    let settings = match Settings::resolve(&cli.global, file) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    init_logging(settings.log_json);
    match run(cli.command, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn fail(e: Error) -> ExitCode {
    eprintln!(
        "canopy: {}{}",
        e.message,
        e.source
            .as_ref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default()
    );
    ExitCode::FAILURE
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(command: Command, s: Settings) -> Result<(), Error> {
    match command {
        Command::Serve {
            conformance_fixtures,
        } => {
            let mut s = s;
            s.mcp_conformance_fixtures = conformance_fixtures;
            serve(s).await
        }
        Command::Migrate => {
            canopy::open_store(&s).await?.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Openapi => {
            println!(
                "{}",
                serde_json::to_string_pretty(&canopy_http::openapi_document())?
            );
            Ok(())
        }
        Command::Backup { file } => canopy::cli_backup(&s, &file).await,
        Command::Restore { file } => canopy::cli_restore(&s, &file).await,
        Command::Keys { command } => keys(command, s).await,
        Command::Projects { command } => projects(command, s).await,
        Command::Orgs {
            command: OrgsCommand::Update { slug, rate_limit },
        } => {
            let p = canopy::prepare(&s).await?;
            let org = canopy_services::tenancy::org_by_slug(&p.store, &slug).await?;
            let limit = (rate_limit > 0).then_some(rate_limit);
            canopy_services::tenancy::set_org_rate_limit(&p.store, org, limit).await?;
            println!(
                "org '{slug}': rate limit {}",
                limit.map_or("removed".to_owned(), |n| format!("{n}/min"))
            );
            Ok(())
        }
        Command::Orgs {
            command: OrgsCommand::Create { slug, name },
        } => {
            let p = canopy::prepare(&s).await?;
            let (org, key) = canopy_services::tenancy::create_org(
                &p.store,
                &slug,
                name.as_deref().unwrap_or(&slug),
            )
            .await?;
            println!("Created org '{slug}' ({org}). Admin key (shown once):\n\n    {key}\n");
            Ok(())
        }
    }
}

async fn serve(s: Settings) -> Result<(), Error> {
    let prepared = canopy::prepare(&s).await?;
    if let Some(b) = &prepared.bootstrapped {
        println!(
            "First start: created org 'default' ({}) and project 'default' ({}).",
            b.org, b.project
        );
        println!(
            "Admin key (shown once; also written to {}):",
            s.data_dir.join("admin.key").display()
        );
        println!("\n    {}\n", b.admin_key);
    }
    let listener = tokio::net::TcpListener::bind(s.bind)
        .await
        .map_err(|e| Error::internal(e).with_field("bind"))?;
    let addr = listener.local_addr().map_err(Error::internal)?;
    tracing::info!(%addr, backend = prepared.store.backend().as_str(), "canopy listening");
    println!(
        "Canopy {} listening on http://{addr}",
        env!("CARGO_PKG_VERSION")
    );
    canopy::serve(
        listener,
        prepared,
        shutdown_signal(),
        Duration::from_secs(s.shutdown_grace_secs),
    )
    .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// The CLI acts as an org-wide admin of `org`, audited under the key id `key_000…0`.
async fn cli_services(s: &Settings, org: &str) -> Result<(Services, Principal), Error> {
    let p = canopy::prepare(s).await?;
    let org_id: OrgId = canopy_services::tenancy::org_by_slug(&p.store, org).await?;
    let principal = Principal {
        key_id: KeyId::nil(),
        org_id,
        project_id: None,
        scopes: Scopes::empty().with(Scope::Admin),
        kind: CredentialKind::AccessKey,
        // Not an agent: CLI actions are audited under the all-zero key id.
        agent: None,
    };
    Ok((p.svc, principal))
}

async fn call<O: Operation>(
    svc: &Services,
    who: &Principal,
    input: O::Input,
) -> Result<O::Output, Error> {
    dispatch::<O>(svc, who, Default::default(), input).await
}

fn print(v: &impl serde::Serialize) -> Result<(), Error> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

async fn keys(command: KeysCommand, s: Settings) -> Result<(), Error> {
    match command {
        KeysCommand::Create {
            name,
            scopes,
            project,
            expires_at,
            rate_limit,
            org,
        } => {
            let (svc, who) = cli_services(&s, &org).await?;
            let project_id = match project {
                Some(p) => Some(canopy::resolve_project(&svc, who.org_id, &p).await?),
                None => None,
            };
            let input = CreateAccessKeyInput {
                name,
                user_id: None,
                email: None,
                scopes: if scopes.is_empty() {
                    None
                } else {
                    Some(scopes)
                },
                project_id,
                plan: None,
                expires_at,
                mcp_tools: None,
                rate_limit,
            };
            print(&call::<CreateAccessKey>(&svc, &who, input).await?)
        }
        KeysCommand::List { org } => {
            let (svc, who) = cli_services(&s, &org).await?;
            let mut cursor = None;
            loop {
                let page = call::<ListAccessKeys>(
                    &svc,
                    &who,
                    ListAccessKeysInput {
                        user_id: None,
                        status: None,
                        limit: Some(100),
                        cursor,
                    },
                )
                .await?;
                for k in &page.data {
                    println!(
                        "{}  {:<8} {:<14} {:<30} {}",
                        k.id,
                        k.status,
                        k.key_preview,
                        k.name,
                        k.scopes.join(",")
                    );
                }
                match page.pagination.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break Ok(()),
                }
            }
        }
        KeysCommand::Revoke { id, org } => {
            let (svc, who) = cli_services(&s, &org).await?;
            print(&call::<RevokeAccessKey>(&svc, &who, KeyIdInput { id }).await?)
        }
        KeysCommand::Rotate { id, org } => {
            let (svc, who) = cli_services(&s, &org).await?;
            print(&call::<RotateAccessKey>(&svc, &who, KeyIdInput { id }).await?)
        }
    }
}

async fn projects(command: ProjectsCommand, s: Settings) -> Result<(), Error> {
    match command {
        ProjectsCommand::Create { name, slug, org } => {
            let (svc, who) = cli_services(&s, &org).await?;
            print(
                &call::<CreateClient>(
                    &svc,
                    &who,
                    CreateClientInput {
                        name,
                        slug,
                        metadata: None,
                        rate_limit: None,
                    },
                )
                .await?,
            )
        }
        ProjectsCommand::List { org } => {
            let (svc, who) = cli_services(&s, &org).await?;
            let mut cursor = None;
            loop {
                let page = call::<ListClients>(
                    &svc,
                    &who,
                    ListClientsInput {
                        limit: Some(100),
                        cursor,
                        include_archived: true,
                    },
                )
                .await?;
                for c in &page.data {
                    println!("{}  {:<9} {:<24} {}", c.id, c.status, c.slug, c.name);
                }
                match page.pagination.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break Ok(()),
                }
            }
        }
    }
}
