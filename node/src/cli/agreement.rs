//! `dxmesh agreement`: negotiating, inspecting, exporting and verifying
//! sharing agreements.

use super::call::admin_call;
use crate::admin::{self, AdminRequest, AdminResponse};
use crate::base::keyfile;
use anyhow::{Context, bail};
use clap::Subcommand;
use dxmesh_protocol::codec;
use dxmesh_protocol::signed::Signed;
use std::path::{Path, PathBuf};

/// `dxmesh agreement ...`.
#[derive(Debug, Subcommand)]
pub enum AgreementCommand {
    /// Propose an agreement to another member.
    Propose {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// The other party's PeerId.
        #[arg(long)]
        to: String,
        /// Terms file (TOML; see docs/agreements.md).
        #[arg(long)]
        terms: PathBuf,
    },
    /// Answer the last offer with changed terms.
    Counter {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Agreement or thread id (a hex prefix is enough).
        id: String,
        /// Terms file.
        #[arg(long)]
        terms: PathBuf,
    },
    /// Accept the last offer.
    Accept {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Agreement or thread id.
        id: String,
    },
    /// Suspend an accepted agreement (pulls and disclosures stop).
    Suspend {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Agreement or thread id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Lift your own suspension.
    Resume {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Agreement or thread id.
        id: String,
    },
    /// End a negotiation or an agreement for good.
    Terminate {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Agreement or thread id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// List every agreement this node is a party to.
    List {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show terms, state, signatures and transcript.
    Show {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Agreement or thread id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the signed transcript to a file for offline verification.
    Export {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Agreement or thread id.
        id: String,
        /// File to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify an exported transcript offline: every signature, the chain of
    /// steps and every transition.
    Verify {
        /// Transcript file.
        file: PathBuf,
    },
}

/// Sends an agreement step to the node and prints the thread it is on.
fn send_step(dir: &Path, request: AdminRequest) -> anyhow::Result<()> {
    if let AdminResponse::AgreementStep(s) = admin_call(dir, request)? {
        print_summary(&s);
    }
    Ok(())
}

/// Runs `dxmesh agreement ...`.
pub fn run(cmd: AgreementCommand) -> anyhow::Result<()> {
    use crate::agreements::terms_file::TermsFile;
    let act = |dir: &Path, id: String, action: &str, reason: Option<String>| {
        let action = action.into();
        send_step(dir, AdminRequest::AgreementAct { id, action, reason })
    };
    match cmd {
        AgreementCommand::Propose { dir, to, terms } => {
            let (file, terms_path) = (TermsFile::load(&terms)?, terms.display().to_string());
            let request = AdminRequest::AgreementPropose {
                to,
                terms: file,
                terms_path,
            };
            send_step(&dir, request)
        }
        AgreementCommand::Counter { dir, id, terms } => {
            let (file, terms_path) = (TermsFile::load(&terms)?, terms.display().to_string());
            let request = AdminRequest::AgreementCounter {
                id,
                terms: file,
                terms_path,
            };
            send_step(&dir, request)
        }
        AgreementCommand::Accept { dir, id } => act(&dir, id, "accept", None),
        AgreementCommand::Suspend { dir, id, reason } => act(&dir, id, "suspend", Some(reason)),
        AgreementCommand::Resume { dir, id } => act(&dir, id, "resume", None),
        AgreementCommand::Terminate { dir, id, reason } => act(&dir, id, "terminate", Some(reason)),
        AgreementCommand::List { dir, json } => {
            let AdminResponse::Agreements { agreements } =
                admin_call(&dir, AdminRequest::AgreementList)?
            else {
                bail!("unexpected answer from the node");
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&agreements)?);
                return Ok(());
            }
            println!(
                "{:<18} {:<18} {:<11} {:<14} {:<28} CONSUMER",
                "THREAD", "AGREEMENT", "STATUS", "DATASET", "PROVIDER"
            );
            for a in &agreements {
                println!(
                    "{:<18} {:<18} {:<11} {:<14} {:<28} {}",
                    &a.thread[..16],
                    &a.agreement[..16],
                    a.status,
                    a.dataset,
                    a.provider.split(' ').next().unwrap_or(""),
                    a.consumer.split(' ').next().unwrap_or("")
                );
            }
            Ok(())
        }
        AgreementCommand::Show { dir, id, json } => {
            let AdminResponse::Agreement(d) = admin_call(&dir, AdminRequest::AgreementShow { id })?
            else {
                bail!("unexpected answer from the node");
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
                return Ok(());
            }
            print_summary(&d.summary);
            println!("\nterms:\n{}", d.terms_toml);
            println!("transcript ({} signed steps):", d.transcript.len());
            for l in &d.transcript {
                println!("  #{} {} {} by {}", l.seq, l.at, l.action, l.signer);
                println!("     digest {} signature {}…", l.digest, &l.signature[..32]);
            }
            Ok(())
        }
        AgreementCommand::Export { dir, id, out } => {
            let AdminResponse::Agreement(d) = admin_call(&dir, AdminRequest::AgreementShow { id })?
            else {
                bail!("unexpected answer from the node");
            };
            let bytes =
                hex::decode(&d.transcript_hex).context("the node sent a malformed transcript")?;
            keyfile::write_new_file(&out, &bytes, 0o644)?;
            println!(
                "wrote the signed transcript of agreement {} ({} steps) to {}",
                d.summary.agreement,
                d.transcript.len(),
                out.display()
            );
            Ok(())
        }
        AgreementCommand::Verify { file } => {
            use dxmesh_protocol::agreement::{Negotiation, Step};
            let bytes =
                std::fs::read(&file).with_context(|| format!("{}: cannot read", file.display()))?;
            let steps: Vec<Signed<Step>> = codec::decode(&bytes).with_context(|| {
                format!(
                    "{}: not an exported dxmesh agreement transcript",
                    file.display()
                )
            })?;
            let n = Negotiation::replay(&steps)
                .with_context(|| format!("{}: the transcript does not verify", file.display()))?;
            println!(
                "OK: {} steps, every signature valid, each step follows the one before; phase {:?}",
                n.len, n.phase
            );
            println!("thread:    {}", dxmesh_protocol::hex(&n.thread));
            println!("agreement: {}", dxmesh_protocol::hex(&n.terms.id()));
            println!("provider:  {}", n.terms.provider);
            println!("consumer:  {}", n.terms.consumer);
            Ok(())
        }
    }
}

/// Prints an agreement thread's summary.
fn print_summary(s: &admin::AgreementSummary) {
    println!("thread:    {}", s.thread);
    println!("agreement: {}", s.agreement);
    println!(
        "status:    {}{}",
        s.status,
        if s.pending {
            " (a step awaits the provider)"
        } else {
            ""
        }
    );
    println!("dataset:   {}", s.dataset);
    println!("provider:  {}", s.provider);
    println!("consumer:  {}", s.consumer);
    println!("steps:     {}", s.steps);
    if let Some(e) = &s.epoch {
        println!("now:       {}", e.line());
    }
    if !s.message.is_empty() {
        println!("{}", s.message);
    }
}
