//! Steps 1 to 4 of the demo: the department exports (generated unless
//! given), the trust anchor, the seven nodes and their signed roster, the
//! mesh started from one bootstrap address, and each department's import.

use super::context::{Cx, Peers, TOTAL, done, record_stage_time, step};
use super::options::NODES;
use super::process::{edit, field};
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Step 1: Exports: the input directory (generated there unless `--input` is given).
pub(super) fn exports(cx: &Cx<'_>) -> anyhow::Result<PathBuf> {
    let opts = cx.opts;
    let input = match &opts.input {
        Some(dir) => std::path::absolute(dir)?,
        None => {
            let t = step(
                1,
                TOTAL,
                &format!("generating a province of {} residents", opts.residents),
            );
            let dir = cx.out.join("input");
            crate::sim::synth::synth(&crate::sim::synth::SynthOptions {
                residents: opts.residents,
                out: dir.clone(),
                seed: opts.seed,
                reference: opts.reference,
                home_province: opts.home_province.clone(),
                cycle: 0,
                period_days: 30,
            })?;
            done(t);
            dir
        }
    };
    Ok(input)
}

/// Step 2: Trust anchor, nodes, roster; returns every node's peer ID.
pub(super) fn trust(cx: &Cx<'_>) -> anyhow::Result<Peers> {
    let t = step(
        2,
        TOTAL,
        "creating the trust anchor, seven nodes and the roster",
    );
    let peers = init_nodes(cx)?;
    sign_roster(cx, &peers)?;
    done(t);
    Ok(peers)
}

/// The anchor key and the seven node directories, configured for the demo.
fn init_nodes(cx: &Cx<'_>) -> anyhow::Result<Peers> {
    let (demo, out) = (cx.demo, cx.out);
    let anchor_out = demo.dx(&["keygen", "--out", "anchor.key"])?;
    let pem = &anchor_out[anchor_out
        .find("-----BEGIN PUBLIC KEY-----")
        .context("anchor PEM")?..];
    std::fs::write(out.join("anchor.pub.pem"), pem)?;
    let mut peers = BTreeMap::new();
    let memory = cx.opts.memory_mib.to_string();
    for (name, role, _) in NODES {
        let o = demo.dx(&[
            "init",
            "--dir",
            &demo.node_dir(name),
            "--department",
            name,
            "--role",
            role,
            "--anchor",
            "anchor.pub.pem",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--console",
            "127.0.0.1:0",
            "--memory-mib",
            &memory,
        ])?;
        peers.insert(name, field(&o, "peer_id").context("peer id")?);
        let cfg = out.join(format!("nodes/{name}/config.toml"));
        edit(&cfg, "auto_publish = true", "auto_publish = false")?;
        edit(&cfg, "auto_pull = true", "auto_pull = false")?;
        edit(&cfg, "peer_exchange_secs = 5", "peer_exchange_secs = 1")?;
        if role == "provider" {
            let custodian = if name == "public_security" {
                "self".to_string()
            } else {
                peers["public_security"].clone()
            };
            edit(
                &cfg,
                "[key_custodians]\n",
                &format!("[key_custodians]\nregistration = \"{custodian}\"\n"),
            )?;
        }
    }
    Ok(peers)
}

/// The roster of the seven nodes, signed by the anchor and installed at each.
fn sign_roster(cx: &Cx<'_>, peers: &Peers) -> anyhow::Result<()> {
    let demo = cx.demo;
    demo.dx(&[
        "roster",
        "new",
        "--mesh",
        "demo-province",
        "--out",
        "roster.toml",
    ])?;
    for (name, role, _) in NODES {
        demo.dx(&[
            "roster",
            "add-member",
            "roster.toml",
            "--peer-id",
            &peers[name],
            "--department",
            name,
            "--role",
            role,
        ])?;
    }
    demo.dx(&[
        "roster",
        "sign",
        "roster.toml",
        "--anchor-key",
        "anchor.key",
        "--out",
        "roster-v1",
    ])?;
    for (name, _, _) in NODES {
        demo.dx(&[
            "roster",
            "install",
            "--dir",
            &demo.node_dir(name),
            "roster-v1",
        ])?;
    }
    Ok(())
}

/// Step 3: Start the mesh from one bootstrap address (the comparator's).
pub(super) fn start_mesh(cx: &Cx<'_>) -> anyhow::Result<()> {
    let (demo, out) = (cx.demo, cx.out);
    let t = step(3, TOTAL, "starting seven node processes");
    demo.start("comparator")?;
    let addr = demo.status("comparator")?["listen_addresses"][0]
        .as_str()
        .context("address")?
        .to_string();
    for (name, _, _) in NODES.iter().filter(|n| n.0 != "comparator") {
        let cfg = out.join(format!("nodes/{name}/config.toml"));
        edit(&cfg, "bootstrap = []", &format!("bootstrap = [\"{addr}\"]"))?;
        demo.start(name)?;
    }
    for (name, _, _) in NODES {
        demo.wait(&format!("{name} to see the whole mesh"), 60, || {
            demo.status(name)
                .ok()
                .filter(|s| s["connected"].as_array().is_some_and(|a| a.len() == 6))
        })?;
    }
    done(t);
    Ok(())
}

/// Step 4: Imports: every department's export, one after the other; each
/// import's report lands in `providers/<department>/import.txt`.
pub(super) fn import(cx: &Cx<'_>, input: &Path) -> anyhow::Result<()> {
    let (demo, out) = (cx.demo, cx.out);
    let t = step(4, TOTAL, "importing each department's export");
    let mut imports = Vec::new();
    for (name, _, data) in NODES {
        if let Some((file, dataset, _)) = data {
            let path = input.join(file);
            let dir = demo.node_dir(name);
            let args = [
                "dataset",
                "import",
                "--dir",
                &dir,
                "--dataset",
                dataset,
                "--file",
                path.to_str().context("path")?,
            ];
            let started = std::time::Instant::now();
            let output = super::process::output_with_peak(
                Command::new(&demo.exe)
                    .args(args)
                    .current_dir(out)
                    .env("RUST_LOG", "warn")
                    .env(
                        crate::base::clock::CLOCK_FILE_ENV,
                        out.join(super::process::CLOCK),
                    ),
            );
            record_stage_time(out, "import", name, started.elapsed().as_secs_f64())?;
            if let Ok((_, peak)) = &output {
                record_stage_time(out, "import_peak_mib", name, (*peak / 1024) as f64)?;
            }
            imports.push((name, output.map(|(o, _)| o)));
        }
    }
    for (name, r) in imports {
        let o = r.with_context(|| format!("importing at {name}"))?;
        if !o.status.success() {
            bail!(
                "import at {name} failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        std::fs::create_dir_all(out.join(format!("providers/{name}")))?;
        std::fs::write(out.join(format!("providers/{name}/import.txt")), &o.stdout)?;
    }
    done(t);
    Ok(())
}
