//! `dxmesh audit`: evidence bundles, offline verification and alerts, the
//! security officer's tools.

use super::call::admin_call;
use crate::admin::{AdminRequest, AdminResponse};
use anyhow::{Context, bail};
use clap::Subcommand;
use std::path::PathBuf;

/// `dxmesh audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write the node's evidence bundle (log, checkpoints, cosignatures,
    /// transcripts, manifests, roster chain, keys).
    Export {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Bundle directory to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify bundles offline; exits non-zero on any failure, naming the entry.
    Verify {
        /// The bundle to verify.
        bundle: PathBuf,
        /// The trust anchor's public key (PEM), as the security officer
        /// holds it: every bundle's roster chain must start there (a
        /// bundle's own copy is never trusted).
        #[arg(long)]
        anchor: PathBuf,
        /// Bundles of other nodes, to cross-check.
        #[arg(long = "bundle")]
        others: Vec<PathBuf>,
        /// Also write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Recompute every result the comparator committed to, offline, from
    /// its pulled feeds (tokens only); exits non-zero if a committed result
    /// is not what its job gives on its feeds.
    Recompute {
        /// The comparator's evidence bundle (its commitments, transcripts
        /// and manifests).
        #[arg(long)]
        bundle: PathBuf,
        /// The trust anchor's public key (PEM), as the security officer
        /// holds it: the bundle's roster chain must start there.
        #[arg(long)]
        anchor: PathBuf,
        /// The comparator's data directory, or a copy of its `pulls/` and
        /// `commitments/` folders.
        #[arg(long)]
        feeds: PathBuf,
        /// Providers' bundles: every commitment they logged checking must
        /// be in the comparator's bundle (and recompute).
        #[arg(long = "provider")]
        providers: Vec<PathBuf>,
        /// Also write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Security alerts: fork evidence this node holds as a witness; and
    /// pulled feeds whose retention ends within a week while commitments of
    /// their epoch are kept (recompute them before).
    Alerts {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
    },
}

/// Runs `dxmesh audit ...`.
pub fn run(cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Export { dir, out } => {
            std::fs::create_dir_all(&out)
                .with_context(|| format!("{}: cannot create", out.display()))?;
            let out_abs = std::path::absolute(&out).unwrap_or(out.clone());
            let AdminResponse::AuditExported { entries, .. } = admin_call(
                &dir,
                AdminRequest::AuditExport {
                    out: out_abs.display().to_string(),
                },
            )?
            else {
                bail!("unexpected answer from the node");
            };
            println!(
                "wrote the evidence bundle ({entries} log entries) to {}",
                out.display()
            );
            Ok(())
        }
        AuditCommand::Recompute {
            bundle,
            anchor,
            feeds,
            providers,
            json,
        } => {
            let anchor = read_anchor(&anchor)?;
            let report = crate::audit::recompute::recompute(&bundle, &feeds, &providers, &anchor)
                .map_err(|e| anyhow::anyhow!("{}: {e}", bundle.display()))?;
            let ok = report.ok();
            publish_report(&report.render(), &report, json.as_deref())?;
            if !ok {
                bail!("a committed result does not recompute");
            }
            if report.erased() > 0 {
                eprintln!(
                    "{} committed result(s) not recomputed: their feeds were erased under retention",
                    report.erased()
                );
                std::process::exit(ERASED_EXIT);
            }
            Ok(())
        }
        AuditCommand::Verify {
            bundle,
            anchor,
            others,
            json,
        } => {
            let anchor = read_anchor(&anchor)?;
            let mut all = vec![bundle];
            all.extend(others);
            let report = crate::audit::verify::verify(&all, &anchor);
            publish_report(&report.render(), &report, json.as_deref())?;
            if !report.ok() {
                bail!("verification failed");
            }
            Ok(())
        }
        AuditCommand::Alerts { dir } => {
            let AdminResponse::AuditAlerts { alerts, retention } =
                admin_call(&dir, AdminRequest::AuditAlerts)?
            else {
                bail!("unexpected answer from the node");
            };
            if alerts.is_empty() {
                println!("no security alerts");
            }
            for r in retention {
                println!("RETENTION: {r}");
            }
            for a in alerts {
                println!("SECURITY ALERT (fork evidence):\n{a}");
            }
            Ok(())
        }
    }
}

/// The exit status of `audit recompute` when nothing is wrong but some
/// commitments could not be recomputed, their feeds erased under retention
/// (1 is a wrong result or a bundle problem).
pub const ERASED_EXIT: i32 = 3;

/// Reads the trust anchor's public key (PEM) the security officer gives.
fn read_anchor(path: &std::path::Path) -> anyhow::Result<dxmesh_protocol::identity::PublicKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the trust anchor's key", path.display()))?;
    dxmesh_protocol::identity::PublicKey::from_pem(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a public key in PEM: {e}", path.display()))
}

/// Prints a report and, if asked, writes it as JSON too.
fn publish_report(
    text: &str,
    report: &impl serde::Serialize,
    json: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    print!("{text}");
    if let Some(j) = json {
        crate::base::fsutil::write_atomic(
            j,
            serde_json::to_string_pretty(report)?.as_bytes(),
            0o644,
        )
        .with_context(|| format!("{}: cannot write", j.display()))?;
    }
    Ok(())
}
