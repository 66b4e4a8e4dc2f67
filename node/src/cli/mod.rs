//! The `dxmesh` command line: argument parsing (clap derive) and dispatch,
//! one file per command group (`node`, `roster`, `agreement`, `dataset`,
//! `console`, `feeds`, `results`, `audit`, `sim`; `call` talks to a running
//! node), and `demo`, which runs a whole cycle on a local mesh through the
//! `dxmesh` command.
//! Errors surface here as `anyhow` with context and a non-zero exit code;
//! everything below returns typed errors.

use crate::base::logging::{self, LogFormat};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

mod agreement;
mod audit;
mod call;
mod console;
mod dataset;
mod demo;
mod feeds;
mod node;
mod results;
mod roster;
mod sim;

/// dxmesh: signed, scoped data exchange between government departments.
#[derive(Debug, Parser)]
#[command(name = "dxmesh", version, about, long_about = None)]
pub struct Cli {
    /// Log format on stderr (filter with RUST_LOG, default `info`); `run`
    /// defaults to the node's `log.format` setting.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new identity (Ed25519 seed, PKCS#8 PEM, mode 0600) and print
    /// its PeerId and PEM public key. Never overwrites a file. Also makes the
    /// trust anchor's key.
    Keygen {
        /// Where to write the identity.
        #[arg(long)]
        out: PathBuf,
    },
    /// Create a node directory: identity, config.toml, the anchor's public key.
    Init(node::InitArgs),
    /// Run the node daemon until SIGINT or SIGTERM.
    Run {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Show the running node's identity, roster, addresses, peers and uptime.
    Status {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the running node's connected peers.
    Peers {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Manage the trust roster (the trust anchor's side, and installing it on nodes).
    #[command(subcommand)]
    Roster(roster::RosterCommand),
    /// Negotiate, inspect and export sharing agreements (through the running node).
    #[command(subcommand)]
    Agreement(agreement::AgreementCommand),
    /// Run comparison jobs: pull what is missing, compare in one pass, check
    /// the ministry, request disclosures, write result CSVs and summary.json.
    Compare(feeds::CompareArgs),
    /// Turn a compare output into files for analysts (CSV that Excel reads,
    /// UTF-8 with a byte-order mark or GB18030; an optional workbook).
    #[command(subcommand)]
    Results(results::ResultsCommand),
    /// Run a whole province's cycle on a local mesh of seven node processes.
    Demo(sim::DemoArgs),
    /// Generate a synthetic province: department exports and expected results.
    Synth(sim::SynthArgs),
    /// Security officers' tools: evidence bundles, offline verification, alerts.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The HTTPS operator console's accounts.
    #[command(subcommand)]
    Console(console::ConsoleCommand),
    /// Import a department export, or show imported datasets.
    #[command(subcommand)]
    Dataset(dataset::DatasetCommand),
    /// Build the feeds of active agreements for an epoch (the node also does
    /// this by itself when an epoch starts).
    Publish(feeds::PublishArgs),
    /// Pull a feed from its provider, verifying every chunk (resumes an
    /// interrupted pull).
    Pull(feeds::PullArgs),
    /// Ask a provider to disclose the allowed fields of records for result tokens.
    Disclose(feeds::DiscloseArgs),
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    // A reader that goes away (`dxmesh dataset show | head -3`) ends the
    // command quietly, as it ends `cat`: no panic message, exit status 141
    // (a shell's for SIGPIPE), the demo's nodes stopped as the stack unwinds.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !stdout_closed(info.payload()) {
            report(info);
        }
    }));
    let cli = Cli::parse();
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::FAILURE
        }
        Err(payload) if stdout_closed(payload.as_ref()) => ExitCode::from(141),
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// An error and its causes on one line, each said once: most errors'
/// messages already end in their cause's (`{path}: {source}`), which
/// anyhow's `{:#}` would print a second time.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let said = cause.to_string();
        if !text.ends_with(&said) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&said);
        }
    }
    text
}

/// Whether a panic is `print!`'s on a standard output whose reader has
/// gone (EPIPE: Rust ignores SIGPIPE, so the write fails instead).
fn stdout_closed(payload: &(dyn std::any::Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("");
    message.starts_with("failed printing to stdout") && message.contains("os error 32")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if !matches!(cli.command, Command::Run { .. }) {
        logging::init(cli.log_format.unwrap_or_default());
    }
    crate::base::clock::check()?;
    match cli.command {
        Command::Keygen { out } => node::keygen(&out),
        Command::Init(args) => node::init(args),
        Command::Run { dir } => node::run(dir, cli.log_format),
        Command::Status { dir, json } => node::status(&dir, json),
        Command::Peers { dir } => node::peers(&dir),
        Command::Roster(cmd) => roster::run(cmd),
        Command::Agreement(cmd) => agreement::run(cmd),
        Command::Dataset(cmd) => dataset::run(cmd),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Console(cmd) => console::run(cmd),
        Command::Demo(args) => sim::demo(args),
        Command::Synth(args) => sim::synth(args),
        Command::Compare(args) => feeds::compare(args),
        Command::Results(cmd) => results::run(cmd),
        Command::Publish(args) => feeds::publish(args),
        Command::Pull(args) => feeds::pull(args),
        Command::Disclose(args) => feeds::disclose(args),
    }
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[test]
    fn an_error_says_each_cause_once_and_keeps_a_short_one_said_earlier() {
        #[derive(Debug, thiserror::Error)]
        #[error("export.csv: {source}")]
        struct Named {
            source: std::io::Error,
        }
        let io = std::io::Error::other("line 20: bad byte");
        let e = anyhow::Error::from(Named { source: io });
        assert_eq!(error_text(&e), "export.csv: line 20: bad byte");
        // A cause whose words came earlier, but not as the end, is said.
        let e = anyhow::anyhow!("closed")
            .context("the pull was closed early")
            .context("pulling");
        assert_eq!(error_text(&e), "pulling: the pull was closed early: closed");
    }
}
