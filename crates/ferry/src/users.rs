//! `ferry users`: manage the MQTT clients' built-in user database (`DATA_DIR/authn/
//! users.json`, `[[authentication.methods]] mechanism = "built_in_database"`). Works on the
//! same file as the running broker and its HTTP API (through `ferry_auth::users::UserDb`);
//! a running Ferry sees the change at the next CONNECT.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use ferry_auth::users::UserDb;

use crate::admins::password;

#[derive(Args)]
pub(crate) struct UsersArgs {
    /// The data directory (`[node] data_dir`). Default: the config's with --config, else
    /// ./data.
    #[arg(long, value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// The config file Ferry runs with (for its `[node] data_dir`).
    #[arg(long, short, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: UsersCommand,
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Add a user (password from stdin when --password is not given), hashed with argon2id.
    Add {
        name: String,
        #[arg(long)]
        password: Option<String>,
        /// Superusers skip authorization.
        #[arg(long)]
        superuser: bool,
    },
    /// Delete a user.
    Del { name: String },
    /// List users.
    List,
    /// Set a user's password (from stdin when --password is not given).
    Passwd {
        name: String,
        #[arg(long)]
        password: Option<String>,
    },
    /// Import a Mosquitto password file (`mosquitto_passwd`'s $7$ and $6$ entries), keeping
    /// its hashes; users already present get the imported hash.
    Import { file: PathBuf },
}

pub(crate) fn run(args: UsersArgs) -> anyhow::Result<()> {
    let cfg = match &args.config {
        Some(p) => ferry::Config::load(p)?,
        None => ferry::Config::default(),
    };
    let data_dir = args.data_dir.clone().unwrap_or(cfg.node.data_dir.clone());
    let db = UserDb::open(&data_dir)
        .with_context(|| format!("opening the user database in {}", data_dir.display()))?;
    match args.command {
        UsersCommand::Add {
            name,
            password: p,
            superuser,
        } => {
            let p = password(p, &name)?;
            db.add(&name, &p, superuser)?;
            println!(
                "added {name}{}",
                if superuser { " (superuser)" } else { "" }
            );
        }
        UsersCommand::Del { name } => {
            db.delete(&name)?;
            println!("deleted {name}");
        }
        UsersCommand::List => {
            println!("{:<32} {:<10} HASH", "USER", "SUPERUSER");
            for u in db.list()? {
                let kind = match u.password_hash.split('$').nth(1) {
                    Some("7") => "mosquitto-pbkdf2-sha512",
                    Some("6") => "mosquitto-sha512",
                    Some(k) => k,
                    None => "?",
                };
                println!("{:<32} {:<10} {kind}", u.user_id, u.is_superuser);
            }
        }
        UsersCommand::Passwd { name, password: p } => {
            let p = password(p, &name)?;
            db.update(&name, Some(&p), None)?;
            println!("password of {name} changed");
        }
        UsersCommand::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let n = db
                .import_mosquitto(&text)
                .with_context(|| format!("importing {}", file.display()))?;
            println!("imported {n} users from {}", file.display());
        }
    }
    Ok(())
}
