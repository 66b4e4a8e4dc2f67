//! The `dxmesh` command line: argument parsing (clap derive) and dispatch.
//! Errors surface here as `anyhow` with context and a non-zero exit code;
//! everything below returns typed errors.

use crate::admin::{self, AdminRequest, AdminResponse, StatusInfo};
use crate::config::{self, Config, LogConfig, LogFormatSetting, NetworkConfig, TrustConfig};
use crate::keyfile;
use crate::logging::{self, LogFormat};
use crate::roster_file::{self, Draft, DraftMember};
use crate::{daemon, daemon::now};
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use dxmesh_protocol::codec;
use dxmesh_protocol::identity::{Identity, PublicKey};
use dxmesh_protocol::roster::{self, Role, Roster};
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    Init(InitArgs),
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
    Roster(RosterCommand),
    /// Negotiate, inspect and export sharing agreements (through the running node).
    #[command(subcommand)]
    Agreement(AgreementCommand),
    /// Run comparison jobs: pull what is missing, compare in one pass, check
    /// the ministry, request disclosures, write result CSVs and summary.json.
    Compare {
        /// Node directory (the comparator).
        #[arg(long)]
        dir: PathBuf,
        /// Job file (see deploy/jobs.toml).
        #[arg(long)]
        jobs: PathBuf,
        /// Epoch; the current one if absent.
        #[arg(long)]
        epoch: Option<u64>,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Run a whole province's cycle on a local mesh of seven node processes.
    Demo {
        /// Residents to generate.
        #[arg(long, default_value_t = 200_000)]
        residents: u64,
        /// Use department exports in this directory (canonical layout) instead.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Output directory.
        #[arg(long, default_value = "dxmesh-demo")]
        out: PathBuf,
        /// Reference date of the cycle (default today).
        #[arg(long)]
        ref_date: Option<String>,
        /// Home province code.
        #[arg(long, default_value = "44")]
        home_province: String,
        /// Generator seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Generate a synthetic province: department exports and expected results.
    Synth {
        /// Residents.
        #[arg(long)]
        residents: u64,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Reference date (default today).
        #[arg(long)]
        ref_date: Option<String>,
        /// Home province code.
        #[arg(long, default_value = "44")]
        home_province: String,
    },
    /// Security officers' tools: evidence bundles, offline verification, alerts.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Import a department export, or show imported datasets.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Build the feeds of active agreements for an epoch (the node also does
    /// this by itself when an epoch starts).
    Publish {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Agreement or thread id (hex prefix); every active agreement if absent.
        #[arg(long)]
        agreement: Option<String>,
        /// Epoch; the current one if absent.
        #[arg(long)]
        epoch: Option<u64>,
    },
    /// Pull a feed from its provider, verifying every chunk (resumes an
    /// interrupted pull).
    Pull {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Agreement or thread id (hex prefix).
        #[arg(long)]
        agreement: String,
        /// Epoch; the current one if absent.
        #[arg(long)]
        epoch: Option<u64>,
        /// Only the chunks covering this token range: FROM-TO (32 hex digits each).
        #[arg(long)]
        range: Option<String>,
    },
    /// Ask a provider to disclose the allowed fields of records for result tokens.
    Disclose {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Agreement or thread id (hex prefix).
        #[arg(long)]
        agreement: String,
        /// Epoch; the current one if absent.
        #[arg(long)]
        epoch: Option<u64>,
        /// Result kind (e.g. uninsured).
        #[arg(long)]
        kind: String,
        /// Fields, comma-separated.
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
        /// File of tokens, one hex token per line.
        #[arg(long)]
        tokens: Option<PathBuf>,
        /// Or: the first N tokens of the pulled feed.
        #[arg(long)]
        first: Option<u64>,
        /// Write the disclosed records as CSV here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

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
        /// Bundles of other nodes, to cross-check.
        #[arg(long = "bundle")]
        others: Vec<PathBuf>,
        /// Also write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Security alerts: fork evidence this node holds as a witness.
    Alerts {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
    },
}

/// `dxmesh dataset ...`.
#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Import a department export (CSV or JSON Lines): normalise IDs,
    /// quarantine what cannot be normalised, store the dataset atomically.
    Import {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Dataset name (`[a-z0-9_]`).
        #[arg(long)]
        dataset: String,
        /// The export file.
        #[arg(long)]
        file: PathBuf,
        /// Mapping file (TOML) renaming columns to canonical names.
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the import statistics of every dataset (or one).
    Show {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Only this dataset.
        name: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

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

/// `dxmesh init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Node directory to create.
    #[arg(long)]
    pub dir: PathBuf,
    /// Department (`public_security`, `civil_affairs`, `health`,
    /// `disabled_federation`, `hr`, `comparator`, `ministry`, or another name).
    #[arg(long)]
    pub department: String,
    /// Role: provider, comparator or ministry.
    #[arg(long)]
    pub role: Role,
    /// The provincial trust anchor's public key (PEM).
    #[arg(long)]
    pub anchor: PathBuf,
    /// Name shown to people (default: the department).
    #[arg(long)]
    pub name: Option<String>,
    /// Listen multiaddr (repeatable).
    #[arg(long, default_value = "/ip4/0.0.0.0/tcp/7400")]
    pub listen: Vec<String>,
    /// Bootstrap peer multiaddr with /p2p/<PeerId> (repeatable).
    #[arg(long)]
    pub bootstrap: Vec<String>,
}

/// `dxmesh roster ...`.
#[derive(Debug, Subcommand)]
pub enum RosterCommand {
    /// Start a draft: version 1 of a new mesh, or the version after a signed roster.
    New {
        /// Mesh name (for a first version).
        #[arg(long, required_unless_present = "from")]
        mesh: Option<String>,
        /// The current signed roster, to draft its successor.
        #[arg(long, conflicts_with = "mesh")]
        from: Option<PathBuf>,
        /// Draft file to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Add (or replace) a member in a draft.
    AddMember {
        /// Draft file.
        draft: PathBuf,
        /// The node's PeerId (as `dxmesh init` printed it).
        #[arg(long)]
        peer_id: String,
        /// Department.
        #[arg(long)]
        department: String,
        /// Role.
        #[arg(long)]
        role: Role,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Listen multiaddr (repeatable).
        #[arg(long)]
        address: Vec<String>,
        /// Start of validity (RFC 3339 or date; default now).
        #[arg(long)]
        valid_from: Option<String>,
        /// End of validity (RFC 3339 or date; default one year after the start).
        #[arg(long)]
        valid_until: Option<String>,
    },
    /// Revoke a member in a draft (permanent).
    Revoke {
        /// Draft file.
        draft: PathBuf,
        /// The PeerId to revoke.
        #[arg(long)]
        peer_id: String,
    },
    /// Sign a draft with the trust anchor's key.
    Sign {
        /// Draft file.
        draft: PathBuf,
        /// The anchor's identity file.
        #[arg(long)]
        anchor_key: PathBuf,
        /// Signed roster file to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a draft or signed roster as a table.
    Show {
        /// Draft (.toml) or signed roster file.
        file: PathBuf,
    },
    /// Verify a signed roster against the anchor key (and its predecessor).
    Verify {
        /// Signed roster file.
        file: PathBuf,
        /// The anchor's public key (PEM).
        #[arg(long)]
        anchor: PathBuf,
        /// The previous signed version, to check the chain.
        #[arg(long)]
        previous: Option<PathBuf>,
    },
    /// Install signed roster versions (oldest first) on a node; a running node
    /// accepts them and spreads them to its peers.
    Install {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Signed roster files, oldest first.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if !matches!(cli.command, Command::Run { .. }) {
        logging::init(cli.log_format.unwrap_or_default());
    }
    match cli.command {
        Command::Keygen { out } => keygen(&out),
        Command::Init(args) => init(args),
        Command::Run { dir } => {
            let format = match cli.log_format {
                Some(f) => f,
                None => match Config::load(&dir) {
                    Ok(c) if c.log.format == LogFormatSetting::Json => LogFormat::Json,
                    _ => LogFormat::Human,
                },
            };
            logging::init(format);
            runtime()?.block_on(async {
                daemon::run(&dir, shutdown_signal())
                    .await
                    .map_err(anyhow::Error::from)
            })
        }
        Command::Status { dir, json } => {
            let status = fetch_status(&dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", render_status(&status));
            }
            Ok(())
        }
        Command::Peers { dir } => {
            let status = fetch_status(&dir)?;
            print!("{}", render_peers(&status));
            Ok(())
        }
        Command::Roster(cmd) => roster_command(cmd),
        Command::Agreement(cmd) => agreement_command(cmd),
        Command::Dataset(cmd) => dataset_command(cmd),
        Command::Audit(cmd) => audit_command(cmd),
        Command::Demo {
            residents,
            input,
            out,
            ref_date,
            home_province,
            seed,
        } => {
            let reference = match ref_date {
                Some(d) => dxmesh_protocol::date::Date::parse(&d)?,
                None => now().date(),
            };
            let verdict = crate::demo::run(&crate::demo::DemoOptions {
                residents,
                input,
                out,
                reference,
                home_province,
                seed,
            })?;
            if verdict == Some(false) {
                bail!("the results differ from expected/");
            }
            Ok(())
        }
        Command::Synth {
            residents,
            out,
            seed,
            ref_date,
            home_province,
        } => {
            let reference = match ref_date {
                Some(d) => dxmesh_protocol::date::Date::parse(&d)?,
                None => now().date(),
            };
            let t = std::time::Instant::now();
            let report = crate::synth::synth(&crate::synth::SynthOptions {
                residents,
                out: out.clone(),
                seed,
                reference,
                home_province,
            })?;
            println!(
                "wrote a province of {residents} residents to {} in {:.1}s",
                out.display(),
                t.elapsed().as_secs_f64()
            );
            println!("{report:#?}");
            Ok(())
        }
        Command::Compare {
            dir,
            jobs,
            epoch,
            out,
        } => {
            let file = crate::jobs::JobFile::load(&jobs)?;
            file.compile(&jobs)?;
            std::fs::create_dir_all(&out)
                .with_context(|| format!("{}: cannot create", out.display()))?;
            let out_abs = std::path::absolute(&out).unwrap_or(out.clone());
            let AdminResponse::Compared { summary } = admin_call(
                &dir,
                AdminRequest::Compare {
                    jobs: file,
                    jobs_path: jobs.display().to_string(),
                    epoch,
                    out: out_abs.display().to_string(),
                },
            )?
            else {
                bail!("unexpected answer from the node");
            };
            let v: serde_json::Value = serde_json::from_str(&summary)?;
            println!(
                "comparison of epoch {} (reference date {}) written to {}",
                v["epoch"],
                v["reference_date"].as_str().unwrap_or(""),
                out_abs.display()
            );
            if let Some(results) = v["results"].as_object() {
                for (name, r) in results {
                    println!(
                        "  {name:<22} {:>10}   {}",
                        r["count"],
                        r["file"].as_str().unwrap_or("")
                    );
                }
            }
            if let Some(m) = v["ministry"].as_object() {
                println!(
                    "  removed (insured in another province): {}",
                    m["removed_other_province"]
                );
            }
            Ok(())
        }
        Command::Publish {
            dir,
            agreement,
            epoch,
        } => {
            let AdminResponse::Published { feeds } =
                admin_call(&dir, AdminRequest::Publish { agreement, epoch })?
            else {
                bail!("unexpected answer from the node");
            };
            if feeds.is_empty() {
                println!("no active agreement to publish");
            }
            for f in feeds {
                println!(
                    "published {} epoch {}: {} records in {} chunks, root {}, manifest {}",
                    f.dataset, f.epoch, f.records, f.chunks, f.root, f.manifest
                );
                println!("agreement {}", f.agreement);
            }
            Ok(())
        }
        Command::Pull {
            dir,
            agreement,
            epoch,
            range,
        } => {
            let range = match range {
                None => None,
                Some(r) => {
                    let (a, b) = r.split_once('-').context("--range must be FROM-TO")?;
                    Some((a.to_string(), b.to_string()))
                }
            };
            let AdminResponse::Pulled {
                summary,
                agreement,
                epoch,
            } = admin_call(
                &dir,
                AdminRequest::Pull {
                    agreement,
                    epoch,
                    range,
                },
            )?
            else {
                bail!("unexpected answer from the node");
            };
            let mbps = if summary.seconds > 0.0 {
                summary.bytes as f64 / summary.seconds / 1e6
            } else {
                0.0
            };
            println!(
                "pulled agreement {agreement} epoch {epoch}: {} records, {} chunks ({} received now, {} bytes, {:.2}s, {:.1} MB/s); every chunk verified",
                summary.records,
                summary.chunks,
                summary.received,
                summary.bytes,
                summary.seconds,
                mbps
            );
            Ok(())
        }
        Command::Disclose {
            dir,
            agreement,
            epoch,
            kind,
            fields,
            tokens,
            first,
            out,
        } => {
            let list = match tokens {
                None => vec![],
                Some(f) => std::fs::read_to_string(&f)
                    .with_context(|| format!("{}: cannot read", f.display()))?
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect(),
            };
            let out = out.map(|p| std::path::absolute(&p).unwrap_or(p).display().to_string());
            let AdminResponse::Disclosed {
                records,
                unknown,
                out,
            } = admin_call(
                &dir,
                AdminRequest::Disclose {
                    agreement,
                    epoch,
                    result_kind: kind,
                    fields,
                    tokens: list,
                    first,
                    out,
                },
            )?
            else {
                bail!("unexpected answer from the node");
            };
            println!(
                "disclosed {records} records ({unknown} tokens unknown to the provider){}",
                out.map(|o| format!("; written to {o}")).unwrap_or_default()
            );
            Ok(())
        }
    }
}

fn audit_command(cmd: AuditCommand) -> anyhow::Result<()> {
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
        AuditCommand::Verify {
            bundle,
            others,
            json,
        } => {
            let mut all = vec![bundle];
            all.extend(others);
            let report = crate::audit_verify::verify(&all);
            print!("{}", report.render());
            if let Some(j) = json {
                crate::fsutil::write_atomic(
                    &j,
                    serde_json::to_string_pretty(&report)?.as_bytes(),
                    0o644,
                )
                .with_context(|| format!("{}: cannot write", j.display()))?;
            }
            if !report.ok() {
                bail!("verification failed");
            }
            Ok(())
        }
        AuditCommand::Alerts { dir } => {
            let AdminResponse::AuditAlerts { alerts } =
                admin_call(&dir, AdminRequest::AuditAlerts)?
            else {
                bail!("unexpected answer from the node");
            };
            if alerts.is_empty() {
                println!("no security alerts");
            }
            for a in alerts {
                println!("SECURITY ALERT (fork evidence):\n{a}");
            }
            Ok(())
        }
    }
}

fn dataset_command(cmd: DatasetCommand) -> anyhow::Result<()> {
    use crate::dataset::{self, ImportOptions};
    let data_dir = |dir: &Path| -> anyhow::Result<PathBuf> { Ok(Config::load(dir)?.data_dir(dir)) };
    match cmd {
        DatasetCommand::Import {
            dir,
            dataset,
            file,
            mapping,
            json,
        } => {
            let data = data_dir(&dir)?;
            let reference = now().date();
            let report = dataset::import(
                &data,
                &ImportOptions {
                    dataset,
                    file,
                    mapping,
                    format: None,
                    reference,
                },
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", render_report(&report));
                let q = dataset::current_dir(&data, &report.dataset)?.join("quarantine.csv");
                if report.rows_quarantined > 0 {
                    println!("quarantine report: {}", q.display());
                }
            }
            Ok(())
        }
        DatasetCommand::Show { dir, name, json } => {
            let data = data_dir(&dir)?;
            let reports: Vec<_> = dataset::list(&data)?
                .into_iter()
                .filter(|r| name.as_ref().is_none_or(|n| &r.dataset == n))
                .collect();
            if let Some(n) = &name
                && reports.is_empty()
            {
                bail!("no dataset {n:?} has been imported into {}", dir.display());
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                for r in &reports {
                    print!("{}", render_report(r));
                    println!();
                }
            }
            Ok(())
        }
    }
}

fn render_report(r: &crate::dataset::ImportReport) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "dataset {} (generation {}) from {}\n",
        r.dataset, r.generation, r.file
    ));
    out.push_str(&format!(
        "  columns:             {}\n",
        r.columns.join(", ")
    ));
    out.push_str(&format!("  rows read:           {}\n", r.rows_read));
    out.push_str(&format!("  rows kept:           {}\n", r.rows_kept));
    out.push_str(&format!("  rows quarantined:    {}\n", r.rows_quarantined));
    for (k, v) in &r.quarantined {
        out.push_str(&format!("    {k:<28} {v}\n"));
    }
    out.push_str(&format!("  duplicate rows:      {}\n", r.duplicate_rows));
    out.push_str(&format!("  distinct IDs:        {}\n", r.distinct_ids));
    out.push_str(&format!(
        "  IDs with >1 row:     {}\n",
        r.ids_with_several_rows
    ));
    out.push_str("  ID numbers normalised:\n");
    for (k, v) in &r.fixes {
        out.push_str(&format!("    {k:<28} {v}\n"));
    }
    out.push_str(&format!("  source sha256:       {}\n", r.source_sha256));
    out
}

fn admin_call(dir: &Path, request: AdminRequest) -> anyhow::Result<AdminResponse> {
    let response = runtime()?.block_on(admin::call(dir, &request))?;
    if let AdminResponse::Error { message } = response {
        bail!("{message}");
    }
    Ok(response)
}

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
    if !s.message.is_empty() {
        println!("{}", s.message);
    }
}

fn agreement_command(cmd: AgreementCommand) -> anyhow::Result<()> {
    use crate::terms_file::TermsFile;
    let act =
        |dir: &Path, id: String, action: &str, reason: Option<String>| -> anyhow::Result<()> {
            let r = admin_call(
                dir,
                AdminRequest::AgreementAct {
                    id,
                    action: action.into(),
                    reason,
                },
            )?;
            if let AdminResponse::AgreementStep(s) = r {
                print_summary(&s);
            }
            Ok(())
        };
    match cmd {
        AgreementCommand::Propose { dir, to, terms } => {
            let file = TermsFile::load(&terms)?;
            let r = admin_call(
                &dir,
                AdminRequest::AgreementPropose {
                    to,
                    terms: file,
                    terms_path: terms.display().to_string(),
                },
            )?;
            if let AdminResponse::AgreementStep(s) = r {
                print_summary(&s);
            }
            Ok(())
        }
        AgreementCommand::Counter { dir, id, terms } => {
            let file = TermsFile::load(&terms)?;
            let r = admin_call(
                &dir,
                AdminRequest::AgreementCounter {
                    id,
                    terms: file,
                    terms_path: terms.display().to_string(),
                },
            )?;
            if let AdminResponse::AgreementStep(s) = r {
                print_summary(&s);
            }
            Ok(())
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

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM; only Ctrl-C will stop the node");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}

fn keygen(out: &Path) -> anyhow::Result<()> {
    let rng = ring::rand::SystemRandom::new();
    let identity = Identity::generate(&rng).context("generating an identity")?;
    keyfile::write_identity(out, &identity)?;
    println!("wrote {}", out.display());
    println!("peer_id: {}", identity.peer_id());
    print!("{}", identity.public().to_pem());
    Ok(())
}

fn init(args: InitArgs) -> anyhow::Result<()> {
    let dir = &args.dir;
    for f in [config::CONFIG_FILE, config::KEY_FILE] {
        if dir.join(f).exists() {
            bail!(
                "{}: already exists; refusing to overwrite a node directory",
                dir.join(f).display()
            );
        }
    }
    let anchor_text = std::fs::read_to_string(&args.anchor).with_context(|| {
        format!(
            "{}: cannot read the anchor public key",
            args.anchor.display()
        )
    })?;
    PublicKey::from_pem(&anchor_text)
        .with_context(|| format!("{}: not an Ed25519 public key PEM", args.anchor.display()))?;
    if args.department.trim().is_empty() {
        bail!("--department must not be empty");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("{}: cannot restrict permissions", dir.display()))?;
    }
    let rng = ring::rand::SystemRandom::new();
    let identity = Identity::generate(&rng).context("generating an identity")?;
    keyfile::write_identity(&dir.join(config::KEY_FILE), &identity)?;
    keyfile::write_new_file(
        &dir.join(config::ANCHOR_FILE),
        anchor_text.as_bytes(),
        0o644,
    )?;
    let config = Config {
        display_name: args.name.clone().unwrap_or_else(|| args.department.clone()),
        department: args.department,
        role: args.role,
        data_dir: PathBuf::from("data"),
        network: NetworkConfig {
            listen: args.listen,
            bootstrap: args.bootstrap,
            peer_exchange_secs: 5,
        },
        trust: TrustConfig {
            anchor_public_key: PathBuf::from(config::ANCHOR_FILE),
        },
        log: LogConfig::default(),
        key_custodians: Default::default(),
        schedule: Default::default(),
    };
    config.write_new(dir)?;
    // Validate what we wrote exactly as `run` will read it.
    Config::load(dir)?;
    println!("created node directory {}", dir.display());
    println!("peer_id: {}", identity.peer_id());
    print!("{}", identity.public().to_pem());
    println!(
        "next: ask the trust anchor to add this PeerId to the roster, then `dxmesh roster install --dir {} ROSTER`",
        dir.display()
    );
    Ok(())
}

fn fetch_status(dir: &Path) -> anyhow::Result<StatusInfo> {
    let response = runtime()?.block_on(admin::call(dir, &AdminRequest::Status))?;
    match response {
        AdminResponse::Status(s) => Ok(*s),
        AdminResponse::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer from the node: {other:?}"),
    }
}

fn render_status(s: &StatusInfo) -> String {
    let mut out = String::new();
    out.push_str(&format!("peer id:     {}\n", s.peer_id));
    out.push_str(&format!("department:  {} ({})\n", s.department, s.role));
    out.push_str(&format!("name:        {}\n", s.display_name));
    out.push_str(&format!(
        "roster:      version {}{} ({})\n",
        s.roster_version,
        s.mesh
            .as_ref()
            .map(|m| format!(" of mesh {m}"))
            .unwrap_or_default(),
        s.self_admission
    ));
    out.push_str(&format!("uptime:      {}s\n", s.uptime_secs));
    out.push_str("listening:\n");
    for a in &s.listen_addresses {
        out.push_str(&format!("  {a}\n"));
    }
    out.push_str(&render_peers(s));
    if !s.refusals.is_empty() {
        out.push_str(&format!("recent refusals ({}):\n", s.refusals.len()));
        for r in &s.refusals {
            out.push_str(&format!(
                "  {} {} {} {}\n",
                r.at,
                r.peer_id.as_deref().unwrap_or("-"),
                r.remote.as_deref().unwrap_or("-"),
                r.reason
            ));
        }
    }
    out.push_str("public key:\n");
    out.push_str(&s.public_key_pem);
    out
}

fn render_peers(s: &StatusInfo) -> String {
    let mut out = format!("connected peers ({}):\n", s.connected.len());
    for p in &s.connected {
        out.push_str(&format!(
            "  {:<20} {:<10} {:<28} {}\n",
            p.department, p.role, p.display_name, p.peer_id
        ));
    }
    out
}

fn roster_command(cmd: RosterCommand) -> anyhow::Result<()> {
    match cmd {
        RosterCommand::New { mesh, from, out } => {
            if out.exists() {
                bail!("{}: already exists; refusing to overwrite", out.display());
            }
            let draft = match (mesh, from) {
                (Some(mesh), None) => Draft {
                    mesh,
                    version: 1,
                    previous: None,
                    revoked: vec![],
                    members: vec![],
                },
                (None, Some(from)) => {
                    let signed = roster_file::load_signed(&from)?;
                    let roster: Roster = codec::decode(signed.body()).with_context(|| {
                        format!("{}: roster body does not decode", from.display())
                    })?;
                    Draft::next_after(&signed, &roster)
                }
                _ => bail!("give either --mesh (first version) or --from (next version)"),
            };
            draft.save(&out)?;
            println!(
                "wrote draft of version {} to {}",
                draft.version,
                out.display()
            );
            Ok(())
        }
        RosterCommand::AddMember {
            draft,
            peer_id,
            department,
            role,
            name,
            address,
            valid_from,
            valid_until,
        } => {
            let mut d = Draft::load(&draft)?;
            let key = roster_file::key_of_peer_id(&peer_id).map_err(anyhow::Error::msg)?;
            let from = match valid_from {
                Some(s) => Timestamp::parse(&s)?,
                None => now(),
            };
            let until = match valid_until {
                Some(s) => Timestamp::parse(&s)?,
                None => from.plus(365 * 86_400),
            };
            if d.revoked
                .iter()
                .any(|r| roster_file::key_of_peer_id(r).ok() == Some(key))
            {
                bail!(
                    "{peer_id} is revoked; a revoked identity can never be a member again (use a new key)"
                );
            }
            d.members
                .retain(|m| roster_file::key_of_peer_id(&m.peer_id).ok() != Some(key));
            d.members.push(DraftMember {
                peer_id: key.peer_id().to_string(),
                display_name: name.unwrap_or_else(|| department.clone()),
                department,
                role,
                addresses: address,
                valid_from: from.to_string(),
                valid_until: until.to_string(),
            });
            d.save(&draft)?;
            println!("added {} to {}", key.peer_id(), draft.display());
            Ok(())
        }
        RosterCommand::Revoke { draft, peer_id } => {
            let mut d = Draft::load(&draft)?;
            let key = roster_file::key_of_peer_id(&peer_id).map_err(anyhow::Error::msg)?;
            d.members
                .retain(|m| roster_file::key_of_peer_id(&m.peer_id).ok() != Some(key));
            if !d
                .revoked
                .iter()
                .any(|r| roster_file::key_of_peer_id(r).ok() == Some(key))
            {
                d.revoked.push(key.peer_id().to_string());
            }
            d.save(&draft)?;
            println!("revoked {} in {}", key.peer_id(), draft.display());
            Ok(())
        }
        RosterCommand::Sign {
            draft,
            anchor_key,
            out,
        } => {
            let d = Draft::load(&draft)?;
            let anchor = keyfile::read_identity(&anchor_key)?;
            let roster = d.to_roster(&draft, now())?;
            let signed = Signed::sign(&anchor, &roster).context("encoding the roster")?;
            let bytes = codec::encode(&signed).context("encoding the signed roster")?;
            keyfile::write_new_file(&out, &bytes, 0o644)?;
            println!(
                "signed roster version {} ({} members, {} revoked) -> {}",
                roster.version,
                roster.members.len(),
                roster.revoked.len(),
                out.display()
            );
            println!("digest: {}", dxmesh_protocol::hex(&signed.digest()));
            Ok(())
        }
        RosterCommand::Show { file } => {
            let is_draft = file.extension().is_some_and(|e| e == "toml");
            if is_draft {
                let d = Draft::load(&file)?;
                let r = d.to_roster(&file, Timestamp(0))?;
                println!("DRAFT (unsigned)");
                print!("{}", roster_file::render(&r, None, None, now()));
            } else {
                let s = roster_file::load_signed(&file)?;
                let r: Roster = codec::decode(s.body())
                    .with_context(|| format!("{}: roster body does not decode", file.display()))?;
                print!(
                    "{}",
                    roster_file::render(&r, Some(s.signer()), Some(&s.digest()), now())
                );
            }
            Ok(())
        }
        RosterCommand::Verify {
            file,
            anchor,
            previous,
        } => {
            let text = std::fs::read_to_string(&anchor)
                .with_context(|| format!("{}: cannot read", anchor.display()))?;
            let anchor_key = PublicKey::from_pem(&text)
                .with_context(|| format!("{}: not a public key PEM", anchor.display()))?;
            let s = roster_file::load_signed(&file)?;
            let prev = previous.map(|p| roster_file::load_signed(&p)).transpose()?;
            let r = roster::accept_chain(prev.as_ref(), std::slice::from_ref(&s), &anchor_key)
                .with_context(|| format!("{}: refused", file.display()))?;
            println!(
                "OK: {} is roster version {} of mesh {}, signed by the trust anchor{}",
                file.display(),
                r.version,
                r.mesh,
                if prev.is_some() {
                    ", and chains to the previous version"
                } else {
                    ""
                }
            );
            Ok(())
        }
        RosterCommand::Install { dir, files } => {
            let mut chain = Vec::new();
            for f in &files {
                chain.push(roster_file::load_signed(f)?);
            }
            let socket = dir.join(config::ADMIN_SOCKET);
            if socket.exists() {
                let rt = runtime()?;
                let req = AdminRequest::RosterInstall {
                    chain_hex: chain
                        .iter()
                        .map(|s| codec::encode(s).map(hex::encode))
                        .collect::<Result<_, _>>()?,
                };
                match rt.block_on(admin::call(&dir, &req)) {
                    Ok(AdminResponse::RosterInstalled { version }) => {
                        println!("the running node holds roster version {version}");
                        return Ok(());
                    }
                    Ok(AdminResponse::Error { message }) => {
                        bail!("the node refused the roster: {message}")
                    }
                    Ok(other) => bail!("unexpected answer from the node: {other:?}"),
                    Err(admin::AdminError::NotRunning { .. }) => {} // stale socket: install offline
                    Err(e) => return Err(e.into()),
                }
            }
            let version = daemon::install_offline(&dir, chain)?;
            println!("installed; the node holds roster version {version}");
            Ok(())
        }
    }
}
