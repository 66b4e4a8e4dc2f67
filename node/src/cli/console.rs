//! `dxmesh console user add|remove|list`: the operator console's accounts
//! (`crate::console::accounts`). The file is read again at every login, so
//! a change applies to a running node at once.

use crate::console::accounts::{Accounts, ConsoleRole};
use anyhow::Context;
use clap::{Args, Subcommand};
use std::io::BufRead;
use std::path::PathBuf;

/// `dxmesh console ...`.
#[derive(Debug, Subcommand)]
pub enum ConsoleCommand {
    /// Manage the console's accounts.
    #[command(subcommand)]
    User(UserCommand),
}

/// `dxmesh console user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an account, or set the role and password of an existing one.
    Add(AddArgs),
    /// Remove an account.
    Remove {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Account name.
        #[arg(long)]
        user: String,
    },
    /// List the accounts and their roles.
    List {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
    },
}

/// `dxmesh console user add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Node directory.
    #[arg(long)]
    dir: PathBuf,
    /// Account name (a-z, 0-9, '_', '.', '-').
    #[arg(long)]
    user: String,
    /// Role: administrator (agreements and publishing), operator
    /// (publishing) or auditor (reads everything, changes nothing).
    #[arg(long, value_enum)]
    role: ConsoleRole,
    /// Read the password from this file's first line (else from the first
    /// line of standard input). Never on the command line.
    #[arg(long)]
    password_file: Option<PathBuf>,
}

/// Runs a `dxmesh console` command.
pub fn run(cmd: ConsoleCommand) -> anyhow::Result<()> {
    let ConsoleCommand::User(cmd) = cmd;
    match cmd {
        UserCommand::Add(a) => {
            let line = match &a.password_file {
                Some(p) => std::fs::read_to_string(p)
                    .with_context(|| format!("{}: cannot read the password", p.display()))?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                None => {
                    let mut line = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut line)
                        .context("reading the password from standard input")?;
                    line.trim_end_matches(['\n', '\r']).to_string()
                }
            };
            let mut accounts = Accounts::load(&a.dir)?;
            accounts.set(&a.user, a.role, &line)?;
            accounts.save(&a.dir)?;
            println!("account {} ({}) saved", a.user, a.role.name());
        }
        UserCommand::Remove { dir, user } => {
            let mut accounts = Accounts::load(&dir)?;
            accounts.remove(&user)?;
            accounts.save(&dir)?;
            println!("account {user} removed");
        }
        UserCommand::List { dir } => {
            for u in Accounts::load(&dir)?.users {
                println!("{}\t{}", u.name, u.role.name());
            }
        }
    }
    Ok(())
}
