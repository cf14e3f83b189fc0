//! The `tessera` command line: `serve`, `migrate` and the operator's `admin` commands.
//!
//! Admin commands print one JSON object on stdout; on failure they print `{"error": ...}` on
//! stderr and exit with status 1, so scripts can rely on both.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use crate::accounts::signup::{create_user, NewUser};
use crate::accounts::workspaces::{self, Owner};
use crate::accounts::{AccountError, Actor, Role};
use crate::config::{Overrides, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "Tessera: partner integrations over OAuth 2.0 for a managed database and cache service"
)]
#[command(long_about = "Tessera: partner integrations over OAuth 2.0 for a managed database and cache service.\n\n\
With no configuration, Tessera keeps its data in ./tessera.db (SQLite) and listens on 127.0.0.1:8080. \
Settings come from defaults, then --config FILE (TOML), then TESSERA_* environment variables, then flags.")]
pub struct Cli {
    /// A TOML file with settings (keys as in the README, e.g. `listen = "0.0.0.0:8080"`).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB [env: TESSERA_DATABASE_URL]
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (console, authorization server and API); applies pending migrations first.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080] [env: TESSERA_LISTEN]
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Run the data plane only: claim database work from the shared database and provision it
    /// on this host (needs TESSERA_PROVISIONER=redis). `serve` does this too when a provisioner
    /// is configured; run agents on other hosts to spread databases over them.
    Agent,
    /// Operator commands that print JSON for scripts.
    #[command(subcommand)]
    Admin(Admin),
}

#[derive(Debug, Subcommand)]
enum Admin {
    /// Create a user (with a personal workspace they own).
    CreateUser(CreateUser),
    /// Create a workspace owned by an existing user.
    CreateWorkspace(CreateWorkspace),
    /// Add an existing user to a workspace.
    AddMember(AddMember),
    /// Register an OAuth application owned by a user or a workspace; prints its client id and,
    /// for a confidential app, its client secret (shown only here).
    CreateApp(CreateApp),
    /// Revoke every grant a user gave an app: its codes, tokens and API keys stop working at once.
    RevokeConsent(RevokeConsent),
    /// Delete an app and every grant, code and token issued to it.
    DeleteApp(DeleteApp),
}

#[derive(Debug, Args)]
struct RevokeConsent {
    /// Email of the user who gave consent.
    #[arg(long)]
    email: String,
    #[arg(long)]
    client_id: String,
}

#[derive(Debug, Args)]
struct DeleteApp {
    #[arg(long)]
    client_id: String,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("owner").required(true).args(["owner_user", "owner_workspace"])))]
struct CreateApp {
    /// Email of the user who owns the app (a user-level app).
    #[arg(long, value_name = "EMAIL")]
    owner_user: Option<String>,
    /// Id of the workspace that owns the app (a workspace-level app).
    #[arg(long, value_name = "WORKSPACE_ID")]
    owner_workspace: Option<String>,
    /// 1 to 80 characters.
    #[arg(long)]
    name: String,
    /// A redirect URI; repeat for several (1 to 10).
    #[arg(long = "redirect-uri", value_name = "URI", required = true)]
    redirect_uris: Vec<String>,
    /// A scope the app may ask for; repeat for several.
    #[arg(long = "scope", value_name = "SCOPE", required = true)]
    scopes: Vec<String>,
    /// A public client (no secret; PKCE required), for native and browser apps.
    #[arg(long)]
    public: bool,
    /// https URL of the app's logo.
    #[arg(long, default_value = "")]
    logo_url: String,
    /// https URL of the app's homepage.
    #[arg(long, default_value = "")]
    homepage: String,
}

#[derive(Debug, Args)]
struct CreateUser {
    #[arg(long)]
    email: String,
    /// At least 10 characters.
    #[arg(long)]
    password: String,
    /// Display name [default: the part of the email before the @]
    #[arg(long, default_value = "")]
    name: String,
}

#[derive(Debug, Args)]
struct CreateWorkspace {
    #[arg(long)]
    name: String,
    /// Email of the user who will own it.
    #[arg(long, value_name = "EMAIL")]
    owner: String,
}

#[derive(Debug, Args)]
struct AddMember {
    /// Workspace id.
    #[arg(long, value_name = "WORKSPACE_ID")]
    workspace: String,
    #[arg(long)]
    email: String,
    /// admin or member.
    #[arg(long, value_parser = ["admin", "member"])]
    role: String,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(matches!(cli.command, Command::Serve { .. } | Command::Agent));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    let status = runtime.block_on(run(cli));
    crate::ops::log::flush_process_log();
    status
}

async fn run(cli: Cli) -> ExitCode {
    let listen = match &cli.command {
        Command::Serve { listen } => listen.clone(),
        _ => None,
    };
    let overrides = Overrides { config_file: cli.config, database_url: cli.database_url, listen };
    let settings = match Settings::load(&overrides) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    match cli.command {
        Command::Serve { .. } => match crate::app::serve(settings).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&format!("{e:#}")),
        },
        Command::Agent => match agent(settings).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&format!("{e:#}")),
        },
        Command::Migrate => match migrate(&settings).await {
            Ok(()) => {
                println!("{}", json!({"migrated": true}));
                ExitCode::SUCCESS
            }
            Err(e) => fail(&format!("{e:#}")),
        },
        Command::Admin(command) => match admin(&settings, command).await {
            Ok(value) => {
                println!("{value}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
    }
}

async fn agent(settings: Settings) -> anyhow::Result<()> {
    let store = crate::app::open_store(&settings).await?;
    let Some(task) = crate::dataplane::spawn(store.clone(), settings.data_plane.clone()) else {
        anyhow::bail!("tessera agent needs a provisioner: set TESSERA_PROVISIONER=redis");
    };
    crate::app::shutdown_signal().await;
    task.abort();
    store.close().await;
    Ok(())
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let store = crate::store::Store::connect(&settings.database_url).await?;
    store.migrate().await?;
    store.close().await;
    Ok(())
}

async fn admin(settings: &Settings, command: Admin) -> Result<Value, String> {
    // Admin commands bring the schema up to date themselves, so they work before the first `serve`.
    let store = crate::store::Store::connect(&settings.database_url).await.map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| e.to_string())?;
    let now = crate::time::now();
    let outcome = match command {
        Admin::CreateUser(c) => {
            create_user(&store, NewUser { name: &c.name, email: &c.email, password: &c.password }, now)
                .await
                .map(|u| json!({"id": u.id, "email": u.email, "name": u.name}))
        }
        Admin::CreateWorkspace(c) => workspaces::create(&store, Owner::Email(&c.owner), &c.name, now)
            .await
            .map(|w| json!({"id": w.id, "name": w.name})),
        Admin::AddMember(c) => match Role::parse(&c.role) {
            Ok(role) => workspaces::add_member(&store, &Actor::Operator, &c.workspace, &c.email, role, now)
                .await
                .map(|m| json!({"workspace_id": c.workspace, "user_id": m.user_id, "email": m.email, "role": m.role})),
            Err(e) => Err(e),
        },
        Admin::CreateApp(c) => {
            let outcome = create_app(&store, c, now).await;
            store.close().await;
            return outcome;
        }
        Admin::RevokeConsent(c) => {
            let outcome = revoke_consent(&store, &c, now).await;
            store.close().await;
            return outcome;
        }
        Admin::DeleteApp(c) => {
            let outcome = match crate::apps::delete(&store, &Actor::Operator, &c.client_id, now).await {
                Ok(()) => Ok(json!({"deleted": c.client_id})),
                Err(e) => Err(e.to_string()),
            };
            store.close().await;
            return outcome;
        }
    };
    store.close().await;
    outcome.map_err(|e| match e {
        AccountError::Internal(e) => format!("{e:#}"),
        other => other.to_string(),
    })
}

async fn revoke_consent(store: &crate::store::Store, c: &RevokeConsent, now: i64) -> Result<Value, String> {
    let email = crate::accounts::Email::parse(&c.email).map_err(|e| e.to_string())?;
    let user = crate::store::users::by_email(store.reader(), email.as_str())
        .await
        .map_err(|e| e.to_string())?
        .ok_or("user not found")?;
    if crate::apps::find(store, &c.client_id).await.map_err(|e| e.to_string())?.is_none() {
        return Err("app not found".into());
    }
    let revoked = crate::grants::revoke_user_app(store, &Actor::Operator, &user.id, &c.client_id, now)
        .await
        .map_err(|e| e.to_string())?;
    Ok(json!({"client_id": c.client_id, "email": user.email, "grants_revoked": revoked}))
}

async fn create_app(store: &crate::store::Store, c: CreateApp, now: i64) -> Result<Value, String> {
    use crate::apps::{self, AppInput, AppOwner, ClientType};
    let owner = match (c.owner_user, c.owner_workspace) {
        (Some(email), _) => {
            let email = crate::accounts::Email::parse(&email).map_err(|e| e.to_string())?;
            let user = crate::store::users::by_email(store.reader(), email.as_str())
                .await
                .map_err(|e| e.to_string())?
                .ok_or("user not found")?;
            AppOwner::User(user.id)
        }
        (None, Some(workspace)) => AppOwner::Workspace(workspace),
        (None, None) => return Err("give --owner-user or --owner-workspace".into()),
    };
    let input = AppInput {
        name: c.name,
        scopes: c.scopes,
        redirect_uris: c.redirect_uris,
        logo_url: c.logo_url,
        homepage_url: c.homepage,
    };
    let client_type = if c.public { ClientType::Public } else { ClientType::Confidential };
    let (app, secret) =
        apps::create(store, &Actor::Operator, owner, &input, client_type, now).await.map_err(|e| match e {
            apps::AppError::Internal(e) => format!("{e:#}"),
            other => other.to_string(),
        })?;
    let mut out = json!({"client_id": app.client_id, "client_type": app.client_type.as_str()});
    if let Some(secret) = secret {
        out["client_secret"] = json!(secret.into_exposed());
    }
    Ok(out)
}

fn fail(message: &str) -> ExitCode {
    eprintln!("{}", json!({"error": message}));
    ExitCode::FAILURE
}

fn init_logging(serving: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if serving { "info,sqlx=warn" } else { "warn" };
    let filter = EnvFilter::try_from_env("TESSERA_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let json = std::env::var("TESSERA_LOG_FORMAT").is_ok_and(|v| v == "json");
    // Colour codes only for a person at a terminal, never into a log file or collector.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi);
    // A serving process logs a line per request: those are gathered and written together. A
    // command's few lines go straight to stderr.
    let buffer = if serving { crate::ops::log::LogBuffer::stderr().ok() } else { None };
    match (buffer, json) {
        (Some(buffer), true) => builder.with_writer(buffer).json().init(),
        (Some(buffer), false) => builder.with_writer(buffer).init(),
        (None, true) => builder.with_writer(std::io::stderr).json().init(),
        (None, false) => builder.with_writer(std::io::stderr).init(),
    }
}
