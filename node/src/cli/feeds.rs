//! `dxmesh publish`, `pull`, `disclose` and `compare`: the feed steps of a
//! cycle, asked of the running node through its admin socket.

use super::call::admin_call;
use crate::admin::{AdminRequest, AdminResponse, DiscloseCall};
use anyhow::{Context, bail};
use clap::Args;
use std::path::PathBuf;

/// `dxmesh publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Node directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// Agreement or thread id (hex prefix); every active agreement if absent.
    #[arg(long)]
    pub agreement: Option<String>,
    /// Epoch; the current one if absent.
    #[arg(long)]
    pub epoch: Option<u64>,
    /// Build the epoch's feed again from the dataset's current import (one
    /// imported after the feed was published): the new signed manifest
    /// supersedes the old one, which is erased; the consumer pulls it again.
    #[arg(long, requires = "agreement")]
    pub republish: bool,
}

/// The feed a pull or a disclosure is about.
#[derive(Debug, Args)]
pub struct FeedArgs {
    /// Node directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// Agreement or thread id (hex prefix).
    #[arg(long)]
    pub agreement: String,
    /// Epoch; the current one if absent.
    #[arg(long)]
    pub epoch: Option<u64>,
}

/// `dxmesh pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// The feed.
    #[command(flatten)]
    pub feed: FeedArgs,
    /// Only the chunks covering this token range: FROM-TO (32 hex digits each).
    #[arg(long)]
    pub range: Option<String>,
}

/// `dxmesh disclose`.
#[derive(Debug, Args)]
pub struct DiscloseArgs {
    /// The feed whose tokens these are.
    #[command(flatten)]
    pub feed: FeedArgs,
    /// Result kind (e.g. uninsured).
    #[arg(long)]
    pub kind: String,
    /// Fields, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub fields: Vec<String>,
    /// File of tokens, one hex token per line.
    #[arg(long)]
    pub tokens: Option<PathBuf>,
    /// Or: the first N tokens of the pulled feed.
    #[arg(long)]
    pub first: Option<u64>,
    /// Write the disclosed records as CSV here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `dxmesh compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Node directory (the comparator).
    #[arg(long)]
    pub dir: PathBuf,
    /// Job file (see deploy/jobs.toml).
    #[arg(long)]
    pub jobs: PathBuf,
    /// Epoch; the current one if absent.
    #[arg(long)]
    pub epoch: Option<u64>,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// The output directory of a previous comparison (last cycle's): list
    /// who is new, who left and who stayed in each result, under
    /// `changes/` and in `summary.json`.
    #[arg(long)]
    pub previous: Option<PathBuf>,
}

/// Runs `dxmesh publish`.
pub fn publish(args: PublishArgs) -> anyhow::Result<()> {
    let PublishArgs {
        dir,
        agreement,
        epoch,
        republish,
    } = args;
    let request = AdminRequest::Publish {
        agreement,
        epoch,
        republish,
    };
    let AdminResponse::Published { feeds } = admin_call(&dir, request)? else {
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
        if let Some(note) = &f.note {
            println!("note: {note}");
        }
    }
    Ok(())
}

/// Runs `dxmesh pull`.
pub fn pull(args: PullArgs) -> anyhow::Result<()> {
    let PullArgs {
        feed: FeedArgs {
            dir,
            agreement,
            epoch,
        },
        range,
    } = args;
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
        summary.records, summary.chunks, summary.received, summary.bytes, summary.seconds, mbps
    );
    Ok(())
}

/// Runs `dxmesh disclose`.
pub fn disclose(args: DiscloseArgs) -> anyhow::Result<()> {
    let DiscloseArgs {
        feed: FeedArgs {
            dir,
            agreement,
            epoch,
        },
        kind,
        fields,
        tokens,
        first,
        out,
    } = args;
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
        AdminRequest::Disclose(DiscloseCall {
            agreement,
            epoch,
            result_kind: kind,
            fields,
            tokens: list,
            first,
            out,
        }),
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

/// Runs `dxmesh compare`.
pub fn compare(args: CompareArgs) -> anyhow::Result<()> {
    let CompareArgs {
        dir,
        jobs,
        epoch,
        out,
        previous,
    } = args;
    let file = crate::compare::jobs::JobFile::load(&jobs)?;
    let previous = match previous {
        Some(p) => {
            if !p.join("summary.json").is_file() {
                bail!(
                    "--previous {}: not the output of a comparison (it has no summary.json)",
                    p.display()
                );
            }
            Some(std::path::absolute(&p).unwrap_or(p).display().to_string())
        }
        None => None,
    };
    file.compile(&jobs)?;
    // The node makes the folder once it holds the feeds: a comparison
    // refused leaves none behind.
    let out_abs = std::path::absolute(&out).unwrap_or(out.clone());
    let AdminResponse::Compared { summary } = admin_call(
        &dir,
        AdminRequest::Compare {
            jobs: file,
            jobs_path: jobs.display().to_string(),
            epoch,
            out: out_abs.display().to_string(),
            previous,
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
            let file = match r["refused"].as_str() {
                Some(code) => format!("disclosure refused by its provider [{code}]"),
                None => r["file"].as_str().unwrap_or("").to_string(),
            };
            let records = match (r["disclosed_records"].as_u64(), r["count"].as_u64()) {
                (Some(rows), Some(n)) if rows != n && rows > 0 => {
                    format!(" ({rows} records)")
                }
                _ => String::new(),
            };
            println!("  {name:<22} {:>10}   {file}{records}", r["count"]);
        }
    }
    if let Some(m) = v["ministry"].as_object() {
        println!(
            "  removed (insured in another province): {}",
            m["removed_other_province"]
        );
    }
    print_changes(&v["changes"]);
    Ok(())
}

/// The change lists a comparison wrote (with `--previous`).
fn print_changes(c: &serde_json::Value) {
    let Some(results) = c["results"].as_object() else {
        return;
    };
    println!(
        "changes since {} (epoch {}):",
        c["previous"].as_str().unwrap_or("?"),
        c["previous_epoch"]
    );
    for (name, r) in results {
        println!(
            "  {name:<22} {:>6} new {:>6} left {:>8} stayed   {}",
            r["new"],
            r["left"],
            r["stayed"],
            r["file"].as_str().unwrap_or("")
        );
    }
    if let Some(other) = c["not_compared"].as_object() {
        for (name, why) in other {
            println!("  {name:<22} not compared: {}", why.as_str().unwrap_or(""));
        }
    }
}
