//! `ferry admins`: manage the API's users in the data dir while Ferry is stopped (for
//! example, to reset a forgotten password). Works on the same files as the running API,
//! through `ferry_api::auth::Auth`, so the format and the password policy are the same.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use ferry_api::auth::{Auth, AuthSettings, NewUser, Role};

#[derive(Args)]
pub(crate) struct AdminsArgs {
    /// The data directory (`[node] data_dir`); users are in DIR/api/users.json. Default: the
    /// config's `[node] data_dir` with --config, else ./data.
    #[arg(long, value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// The config file Ferry runs with: its `[node] data_dir` and `[api]` default user apply.
    #[arg(long, short, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: AdminsCommand,
}

#[derive(Subcommand)]
enum AdminsCommand {
    /// Set a user's password (read from stdin when --password is not given); the user is no
    /// longer asked to change it at login, and its sessions end.
    Passwd {
        name: String,
        #[arg(long)]
        password: Option<String>,
    },
    /// List users.
    List,
    /// Add a user.
    Add {
        name: String,
        /// administrator or viewer.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read from stdin when not given.
        #[arg(long)]
        password: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Delete a user (not the last administrator).
    Del { name: String },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("unknown role {s:?}: expected administrator or viewer"))
}

/// Opens the store. With no users yet this creates the default administrator, exactly as
/// the first `ferry serve` would.
fn open(data_dir: &Path, settings: &AuthSettings) -> anyhow::Result<Auth> {
    Auth::open(data_dir, settings.clone())
        .with_context(|| format!("opening the API users in {}", data_dir.display()))
}

/// The password from `--password`, or one line of stdin.
pub(crate) fn password(given: Option<String>, name: &str) -> anyhow::Result<String> {
    if let Some(p) = given {
        return Ok(p);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password for {name}: ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let p = line.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!p.is_empty(), "no password given (use --password or stdin)");
    Ok(p.to_owned())
}

pub(crate) fn run(args: AdminsArgs) -> anyhow::Result<()> {
    let cfg = match &args.config {
        Some(p) => ferry::Config::load(p)?,
        None => ferry::Config::default(),
    };
    let data_dir = args.data_dir.clone().unwrap_or(cfg.node.data_dir.clone());
    let settings = cfg.api.settings().auth;
    match args.command {
        AdminsCommand::Passwd { name, password: p } => {
            let auth = open(&data_dir, &settings)?;
            let p = password(p, &name)?;
            auth.set_password(&name, &p)?;
            println!("password of {name} changed");
        }
        AdminsCommand::List => {
            let auth = open(&data_dir, &settings)?;
            println!(
                "{:<24} {:<14} {:<24} DESCRIPTION",
                "USERNAME", "ROLE", "PASSWORD_CHANGE_REQUIRED"
            );
            for u in auth.users() {
                println!(
                    "{:<24} {:<14} {:<24} {}",
                    u.username, u.role, u.password_change_required, u.description
                );
            }
        }
        AdminsCommand::Add {
            name,
            role,
            password: p,
            description,
        } => {
            let auth = open(&data_dir, &settings)?;
            let p = password(p, &name)?;
            auth.add_user(NewUser {
                username: name.clone(),
                password: p,
                role,
                description,
            })?;
            println!("added {name} ({role})");
        }
        AdminsCommand::Del { name } => {
            open(&data_dir, &settings)?.delete_user(&name, None)?;
            println!("deleted {name}");
        }
    }
    Ok(())
}
