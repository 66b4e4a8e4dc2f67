//! `dxmesh demo`: a whole province's cycle on a real local mesh of seven
//! node processes (public security, civil affairs, health, the disabled
//! persons' federation, HR/social security, the provincial comparator and
//! the ministry), driven exactly as operators would drive it: every step
//! is a `dxmesh` command run as a child process (see `deploy/local-mesh.sh`
//! for the same steps by hand). Every process it starts is stopped when it
//! ends, fails, or is interrupted.

use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a node imports: (export file under the input directory, dataset, terms template).
pub type NodeData = Option<(&'static str, &'static str, &'static str)>;

/// The seven nodes: (directory and department, role, what it imports).
pub const NODES: [(&str, &str, NodeData); 7] = [
    (
        "public_security",
        "provider",
        Some(("public_security/registry.csv", "registry", "registry.toml")),
    ),
    (
        "civil_affairs",
        "provider",
        Some((
            "civil_affairs/deaths.csv",
            "deaths",
            "deaths_civil_affairs.toml",
        )),
    ),
    (
        "health",
        "provider",
        Some(("health/deaths.csv", "deaths", "deaths_health.toml")),
    ),
    (
        "disabled_federation",
        "provider",
        Some((
            "disabled_federation/register.csv",
            "register",
            "disability.toml",
        )),
    ),
    (
        "hr",
        "provider",
        Some(("hr/insured.csv", "insured", "insured.toml")),
    ),
    ("comparator", "comparator", None),
    (
        "ministry",
        "ministry",
        Some(("ministry/national.csv", "national", "national.toml")),
    ),
];

const TEMPLATES: [(&str, &str); 6] = [
    (
        "registry.toml",
        include_str!("../../../deploy/agreements/registry.toml"),
    ),
    (
        "insured.toml",
        include_str!("../../../deploy/agreements/insured.toml"),
    ),
    (
        "deaths_civil_affairs.toml",
        include_str!("../../../deploy/agreements/deaths_civil_affairs.toml"),
    ),
    (
        "deaths_health.toml",
        include_str!("../../../deploy/agreements/deaths_health.toml"),
    ),
    (
        "disability.toml",
        include_str!("../../../deploy/agreements/disability.toml"),
    ),
    (
        "national.toml",
        include_str!("../../../deploy/agreements/national.toml"),
    ),
];

/// The default job file (deploy/jobs.toml).
pub const JOBS: &str = include_str!("../../../deploy/jobs.toml");

/// Demo options.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Residents to generate (ignored with `input`).
    pub residents: u64,
    /// Department exports in the canonical layout instead of generating.
    pub input: Option<PathBuf>,
    /// Output directory.
    pub out: PathBuf,
    /// Reference date of the cycle (default today).
    pub reference: dxmesh_protocol::date::Date,
    /// Home province code.
    pub home_province: String,
    /// Generator seed.
    pub seed: u64,
}

/// Child processes to stop, shared with the signal handler.
#[derive(Clone, Default)]
struct Children(Arc<Mutex<Vec<Child>>>);

impl Children {
    fn add(&self, c: Child) {
        if let Ok(mut v) = self.0.lock() {
            v.push(c);
        }
    }

    /// Peak resident memory (VmHWM, KiB) of each child, in start order.
    fn peaks(&self) -> Vec<u64> {
        let Ok(v) = self.0.lock() else { return vec![] };
        v.iter()
            .map(|c| {
                std::fs::read_to_string(format!("/proc/{}/status", c.id()))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find_map(|l| l.strip_prefix("VmHWM:"))
                            .and_then(|x| x.trim().trim_end_matches("kB").trim().parse().ok())
                    })
                    .unwrap_or(0)
            })
            .collect()
    }
    fn stop_all(&self) {
        let Ok(mut v) = self.0.lock() else { return };
        for c in v.iter_mut() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for c in v.iter_mut() {
            loop {
                match c.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > deadline => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        v.clear();
    }
}

struct Demo {
    exe: PathBuf,
    out: PathBuf,
    children: Children,
}

/// A long step: a spinner on the terminal (stderr) while it runs, then one
/// line on stdout with its duration (kept in logs).
struct Step {
    bar: indicatif::ProgressBar,
    line: String,
    started: Instant,
}

fn step(n: usize, total: usize, what: &str) -> Step {
    let line = format!("[{n}/{total}] {what}");
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_message(line.clone());
    bar.enable_steady_tick(Duration::from_millis(120));
    Step {
        bar,
        line,
        started: Instant::now(),
    }
}

fn done(s: Step) {
    s.bar.finish_and_clear();
    println!(
        "{} ... done in {:.1}s",
        s.line,
        s.started.elapsed().as_secs_f64()
    );
}

impl Demo {
    fn dx(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.exe)
            .args(args)
            .current_dir(&self.out)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running dxmesh {}", args.join(" ")))?;
        if !out.status.success() {
            bail!(
                "dxmesh {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn node_dir(&self, name: &str) -> String {
        format!("nodes/{name}")
    }

    fn status(&self, name: &str) -> anyhow::Result<serde_json::Value> {
        let text = self.dx(&["status", "--json", "--dir", &self.node_dir(name)])?;
        Ok(serde_json::from_str(&text)?)
    }

    fn wait<T>(
        &self,
        what: &str,
        secs: u64,
        mut f: impl FnMut() -> Option<T>,
    ) -> anyhow::Result<T> {
        let start = Instant::now();
        loop {
            if let Some(v) = f() {
                return Ok(v);
            }
            if start.elapsed() > Duration::from_secs(secs) {
                bail!("timed out waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn start(&self, name: &str) -> anyhow::Result<()> {
        let log = std::fs::File::create(self.out.join(format!("nodes/{name}/node.log")))?;
        let child = Command::new(&self.exe)
            .args(["run", "--dir", &self.node_dir(name)])
            .current_dir(&self.out)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting a node")?;
        self.children.add(child);
        self.wait(&format!("{name} to start"), 30, || {
            self.status(name).ok().filter(|s| {
                s["listen_addresses"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
            })
        })?;
        Ok(())
    }
}

fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(&format!("{key}: "))
            .map(|v| v.trim().to_string())
    })
}

fn edit(path: &Path, from: &str, to: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)?;
    std::fs::write(path, text.replacen(from, to, 1))?;
    Ok(())
}

/// Runs the demo; returns whether the results matched `expected/` (None without one).
pub fn run(opts: &DemoOptions) -> anyhow::Result<Option<bool>> {
    let exe = std::env::current_exe().context("locating the dxmesh binary")?;
    prepare_out(&opts.out)?;
    let out = std::path::absolute(&opts.out)?;
    let demo = Demo {
        exe,
        out: out.clone(),
        children: Children::default(),
    };
    // Stop every child on Ctrl-C or SIGTERM too.
    let on_signal = demo.children.clone();
    std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(crate::base::clock::shutdown_signal());
            eprintln!("\ninterrupted: stopping every node");
            on_signal.stop_all();
            std::process::exit(130);
        }
    });
    let result = run_steps(&demo, opts);
    demo.children.stop_all();
    result
}

fn prepare_out(out: &Path) -> anyhow::Result<()> {
    let marker = out.join(".dxmesh-demo");
    if out.exists() && std::fs::read_dir(out)?.next().is_some() {
        if !marker.exists() {
            bail!(
                "{}: exists and is not a dxmesh demo directory; choose another --out",
                out.display()
            );
        }
        std::fs::remove_dir_all(out)
            .with_context(|| format!("{}: cannot clear the previous demo", out.display()))?;
    }
    std::fs::create_dir_all(out)?;
    std::fs::write(
        &marker,
        "created by dxmesh demo; removed and recreated by the next run\n",
    )?;
    Ok(())
}

fn run_steps(demo: &Demo, opts: &DemoOptions) -> anyhow::Result<Option<bool>> {
    let total = 10;
    let out = &demo.out;
    let today = crate::base::clock::now().date();
    // 1. Exports.
    let input = match &opts.input {
        Some(dir) => std::path::absolute(dir)?,
        None => {
            let t = step(
                1,
                total,
                &format!("generating a province of {} residents", opts.residents),
            );
            let dir = out.join("input");
            crate::sim::synth::synth(&crate::sim::synth::SynthOptions {
                residents: opts.residents,
                out: dir.clone(),
                seed: opts.seed,
                reference: opts.reference,
                home_province: opts.home_province.clone(),
            })?;
            done(t);
            dir
        }
    };
    // 2. Trust anchor, nodes, roster.
    let t = step(
        2,
        total,
        "creating the trust anchor, seven nodes and the roster",
    );
    let anchor_out = demo.dx(&["keygen", "--out", "anchor.key"])?;
    let pem = &anchor_out[anchor_out
        .find("-----BEGIN PUBLIC KEY-----")
        .context("anchor PEM")?..];
    std::fs::write(out.join("anchor.pub.pem"), pem)?;
    let mut peers = BTreeMap::new();
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
    done(t);
    // 3. Start the mesh from one bootstrap address (the comparator's).
    let t = step(3, total, "starting seven node processes");
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
    // 4. Imports.
    let t = step(4, total, "importing each department's export");
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
            imports.push((
                name,
                Command::new(&demo.exe)
                    .args(args)
                    .current_dir(out)
                    .env("RUST_LOG", "warn")
                    .output(),
            ));
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
    // 5. Agreements: the comparator proposes, each provider accepts.
    let t = step(5, total, "negotiating the sharing agreements");
    let days_back = (today.days_since_epoch() - opts.reference.days_since_epoch()).max(0);
    let period_days = days_back + 30;
    let from = opts.reference.min(today).add_days(-1).context("date")?;
    let until = today.add_days(365).context("date")?;
    let quota = (opts.residents.max(1_000) * 2).to_string();
    let mut agreements = BTreeMap::new();
    for (name, _, data) in NODES {
        let Some((_, _, template)) = data else {
            continue;
        };
        let text = TEMPLATES
            .iter()
            .find(|(n, _)| *n == template)
            .map(|(_, t)| *t)
            .context("template")?;
        let text = text
            .replace("{{FROM}}", &from.to_string())
            .replace("{{UNTIL}}", &until.to_string())
            .replace("{{ANCHOR}}", &opts.reference.to_string())
            .replace("{{PERIOD}}", &format!("P{period_days}D"))
            .replace("{{WINDOW}}", &format!("P{period_days}D"))
            .replace("{{QUOTA}}", &quota);
        let path = out.join(format!("agreements/{template}"));
        std::fs::create_dir_all(path.parent().context("dir")?)?;
        std::fs::write(&path, text)?;
        let o = demo.dx(&[
            "agreement",
            "propose",
            "--dir",
            "nodes/comparator",
            "--to",
            &peers[name],
            "--terms",
            path.to_str().context("path")?,
        ])?;
        let thread = field(&o, "thread").context("thread id")?;
        demo.wait(&format!("the proposal to reach {name}"), 30, || {
            demo.dx(&["agreement", "list", "--json", "--dir", &demo.node_dir(name)])
                .ok()
                .filter(|l| l.contains(&thread))
        })?;
        demo.dx(&[
            "agreement",
            "accept",
            "--dir",
            &demo.node_dir(name),
            &thread[..16],
        ])?;
        agreements.insert(name, thread);
    }
    done(t);
    // 6. Publish.
    let t = step(6, total, "publishing signed feeds at the five departments");
    for (name, _, data) in NODES {
        if data.is_some() && name != "ministry" {
            let dir = demo.node_dir(name);
            demo.wait(&format!("{name} to publish"), 60, || {
                demo.dx(&["publish", "--dir", &dir]).ok()
            })?;
        }
    }
    done(t);
    // 7. Compare (pulls, one pass, ministry check, disclosures).
    let t = step(
        7,
        total,
        "pulling, comparing, checking the ministry, disclosing, uploading to the ministry",
    );
    std::fs::write(out.join("jobs.toml"), JOBS)?;
    let compare = demo.dx(&[
        "compare",
        "--dir",
        "nodes/comparator",
        "--jobs",
        "jobs.toml",
        "--out",
        ".",
    ])?;
    // Upload the verified findings to the ministry (comparator provides, ministry pulls).
    demo.dx(&[
        "dataset",
        "import",
        "--dir",
        "nodes/comparator",
        "--dataset",
        "verified_registrations",
        "--file",
        "verified_registrations.csv",
    ])?;
    let upload = include_str!("../../../deploy/agreements/upload.toml")
        .replace("{{PROVIDER}}", &peers["comparator"])
        .replace("{{CONSUMER}}", &peers["ministry"])
        .replace("{{FROM}}", &from.to_string())
        .replace("{{UNTIL}}", &until.to_string())
        .replace("{{ANCHOR}}", &opts.reference.to_string())
        .replace("{{PERIOD}}", &format!("P{period_days}D"))
        .replace("{{WINDOW}}", &format!("P{period_days}D"));
    let upath = out.join("agreements/upload.toml");
    std::fs::write(&upath, upload)?;
    let o = demo.dx(&[
        "agreement",
        "propose",
        "--dir",
        "nodes/comparator",
        "--to",
        &peers["ministry"],
        "--terms",
        upath.to_str().context("path")?,
    ])?;
    let uthread = field(&o, "thread").context("thread id")?;
    demo.wait("the upload proposal to reach the ministry", 30, || {
        demo.dx(&["agreement", "list", "--json", "--dir", "nodes/ministry"])
            .ok()
            .filter(|l| l.contains(&uthread))
    })?;
    demo.dx(&[
        "agreement",
        "accept",
        "--dir",
        "nodes/ministry",
        &uthread[..16],
    ])?;
    demo.wait("the upload agreement at the comparator", 30, || {
        demo.dx(&["agreement", "list", "--json", "--dir", "nodes/comparator"])
            .ok()
            .filter(|l| l.contains(&uthread) && l.contains("\"active\""))
    })?;
    demo.dx(&[
        "publish",
        "--dir",
        "nodes/comparator",
        "--agreement",
        &uthread[..16],
    ])?;
    let uploaded = demo.dx(&[
        "pull",
        "--dir",
        "nodes/ministry",
        "--agreement",
        &uthread[..16],
    ])?;
    let uploaded_records = uploaded
        .split(" records")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .unwrap_or("0")
        .to_string();
    done(t);
    // 8. Quarantine reports for each provider.
    let t = step(8, total, "collecting the providers' quarantine reports");
    for (name, _, data) in NODES {
        if let Some((_, dataset, _)) = data {
            let q = out.join(format!("nodes/{name}/data/datasets/{dataset}"));
            if let Ok(current) = std::fs::read_to_string(q.join("CURRENT")) {
                let src = q.join(format!("gen-{}/quarantine.csv", current.trim()));
                let _ = std::fs::copy(&src, out.join(format!("providers/{name}/quarantine.csv")));
            }
        }
    }
    done(t);
    // 9. Audit: every node's evidence bundle, verified together offline.
    let t = step(
        9,
        total,
        "exporting every node's audit bundle and verifying them together",
    );
    std::thread::sleep(Duration::from_millis(1500)); // let the last checkpoints be witnessed
    let mut bundles = Vec::new();
    for (name, _, _) in NODES {
        let b = format!("audit/{name}");
        demo.dx(&[
            "audit",
            "export",
            "--dir",
            &demo.node_dir(name),
            "--out",
            &b,
        ])?;
        bundles.push(b);
    }
    let mut verify_args = vec!["audit", "verify", bundles[5].as_str()];
    for b in bundles.iter().filter(|b| !b.ends_with("comparator")) {
        verify_args.push("--bundle");
        verify_args.push(b);
    }
    verify_args.extend(["--json", "audit/report.json"]);
    let audit = Command::new(&demo.exe)
        .args(&verify_args)
        .current_dir(out)
        .env("RUST_LOG", "warn")
        .output()?;
    std::fs::write(out.join("audit/report.txt"), &audit.stdout)?;
    let audit_ok = audit.status.success();
    done(t);
    // 10. Check against expected/.
    let t = step(10, total, "checking the results");
    let expected_dir = input.join("expected");
    let verdict = if expected_dir.exists() {
        let mut mismatches = Vec::new();
        for f in [
            "uninsured.csv",
            "deceased_insured.csv",
            "disabled_uninsured.csv",
            "name_conflicts.csv",
            "coverage.csv",
        ] {
            let want = std::fs::read_to_string(expected_dir.join(f)).unwrap_or_default();
            let have = std::fs::read_to_string(out.join(f)).unwrap_or_default();
            let sorted = |s: &str| {
                let mut v: Vec<String> = s.lines().skip(1).map(String::from).collect();
                v.sort();
                v
            };
            if sorted(&want) != sorted(&have) || want.lines().next() != have.lines().next() {
                mismatches.push(f);
            }
        }
        if mismatches.is_empty() {
            Some(true)
        } else {
            eprintln!("results differ from expected/: {}", mismatches.join(", "));
            Some(false)
        }
    } else {
        None
    };
    done(t);
    // report.html
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json"))?)?;
    let coverage: Vec<(String, u64, u64)> = std::fs::read_to_string(out.join("coverage.csv"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut it = l.split(',');
            Some((
                it.next()?.to_string(),
                it.next()?.parse().ok()?,
                it.next()?.parse().ok()?,
            ))
        })
        .collect();
    let mut imports = Vec::new();
    for (name, _, data) in NODES {
        if data.is_some() || name == "comparator" {
            let v = demo
                .dx(&["dataset", "show", "--json", "--dir", &demo.node_dir(name)])
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(serde_json::Value::Null);
            imports.push((name.to_string(), v));
        }
    }
    let mut agreement_views = Vec::new();
    for thread in agreements.values() {
        if let Ok(t) = demo.dx(&[
            "agreement",
            "show",
            "--json",
            "--dir",
            "nodes/comparator",
            &thread[..16],
        ]) && let Ok(v) = serde_json::from_str(&t)
        {
            agreement_views.push(v);
        }
    }
    let audit_json: Option<serde_json::Value> =
        std::fs::read_to_string(out.join("audit/report.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
    let page = crate::sim::report::render(&crate::sim::report::ReportInputs {
        summary: &summary,
        coverage: &coverage,
        imports: &imports,
        agreements: &agreement_views,
        audit: audit_json.as_ref(),
        expected: verdict,
    });
    std::fs::write(out.join("report.html"), page)?;
    // Nodes were started comparator first, then the others in NODES order.
    let order: Vec<&str> = std::iter::once("comparator")
        .chain(NODES.iter().map(|n| n.0).filter(|n| *n != "comparator"))
        .collect();
    let peaks: Vec<String> = order
        .iter()
        .zip(demo.children.peaks())
        .map(|(n, kib)| format!("{n} {} MiB", kib / 1024))
        .collect();
    println!("\npeak memory per node: {}", peaks.join(", "));
    println!("\n{compare}");
    println!("  uploaded to the ministry: {uploaded_records} verified findings");
    match verdict {
        Some(true) => println!("results match {} exactly", expected_dir.display()),
        Some(false) => println!("RESULTS DIFFER from {}", expected_dir.display()),
        None => println!("(no expected/ results to compare with)"),
    }
    println!(
        "audit: {} (report in {})",
        if audit_ok {
            "every signature, log, pull and disclosure verified"
        } else {
            "VERIFICATION FAILED"
        },
        out.join("audit/report.txt").display()
    );
    println!("report: {}", out.join("report.html").display());
    println!("results: {}", out.display());
    if !audit_ok {
        bail!(
            "the audit verification failed; see {}",
            out.join("audit/report.txt").display()
        );
    }
    Ok(verdict)
}
