//! # dxmesh-tests
//!
//! Multi-node integration tests. The tests in `tests/tests/` start real
//! `dxmesh` processes (the binary `dxmesh-under-test`, which is the real CLI)
//! in temporary directories, listening on `127.0.0.1:0`, and talk to them
//! only as an operator would: through the command line and the admin socket.
//!
//! ## Layout
//! - [`Dxmesh`]: runs one `dxmesh` command and checks its outcome.
//! - [`Mesh`]: a trust anchor, a roster, and node directories.
//! - [`NodeProc`]: one running node process; killed when dropped, so no test
//!   leaves a process behind.

#![forbid(unsafe_code)]

use dxmesh_node::admin::StatusInfo;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `dxmesh` commands with a given binary.
#[derive(Debug, Clone)]
pub struct Dxmesh {
    /// Path of the binary.
    pub bin: PathBuf,
}

impl Dxmesh {
    /// The binary at `bin` (pass `env!("CARGO_BIN_EXE_dxmesh-under-test")`).
    pub fn new(bin: &str) -> Dxmesh {
        Dxmesh {
            bin: PathBuf::from(bin),
        }
    }

    /// Runs `dxmesh ARGS` in `cwd`.
    pub fn run(&self, cwd: &Path, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(args)
            .current_dir(cwd)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()))
    }

    /// Runs `dxmesh ARGS` and panics with its stderr unless it succeeds; returns stdout.
    pub fn ok(&self, cwd: &Path, args: &[&str]) -> String {
        let out = self.run(cwd, args);
        assert!(
            out.status.success(),
            "dxmesh {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs `dxmesh ARGS`, asserts it fails, returns stderr.
    pub fn fails(&self, cwd: &Path, args: &[&str]) -> String {
        let out = self.run(cwd, args);
        assert!(
            !out.status.success(),
            "dxmesh {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).expect("utf-8 output")
    }
}

/// Returns the value after `key: ` on a line of `text`.
pub fn field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no `{key}:` in {text}"))
        .trim()
        .to_string()
}

/// A node directory made by `dxmesh init`.
#[derive(Debug, Clone)]
pub struct NodeDir {
    /// Short name (also the directory name).
    pub name: String,
    /// Department.
    pub department: String,
    /// Role.
    pub role: String,
    /// Directory.
    pub dir: PathBuf,
    /// PeerId printed by init.
    pub peer_id: String,
}

/// A trust anchor and node directories under one temporary directory.
pub struct Mesh {
    /// The `dxmesh` runner.
    pub dx: Dxmesh,
    /// Temporary root (deleted on drop).
    pub root: tempfile::TempDir,
    /// Node directories, in creation order.
    pub nodes: Vec<NodeDir>,
}

impl Mesh {
    /// `dxmesh dataset import` of `file` (in the mesh directory) as `dataset`
    /// at the node in directory `node`; returns the printed report.
    pub fn import(&self, node: &str, dataset: &str, file: &str) -> String {
        self.dx.ok(
            self.path(),
            &[
                "dataset",
                "import",
                "--dir",
                node,
                "--dataset",
                dataset,
                "--file",
                file,
            ],
        )
    }

    /// Creates the anchor key (`anchor.key`, `anchor.pub.pem`).
    pub fn new(bin: &str) -> Mesh {
        let dx = Dxmesh::new(bin);
        let root = tempfile::tempdir().expect("tempdir");
        let out = dx.ok(root.path(), &["keygen", "--out", "anchor.key"]);
        let pem_start = out.find("-----BEGIN PUBLIC KEY-----").expect("pem");
        std::fs::write(root.path().join("anchor.pub.pem"), &out[pem_start..]).expect("write pem");
        Mesh {
            dx,
            root,
            nodes: Vec::new(),
        }
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        self.root.path()
    }

    /// `dxmesh init` a node listening on 127.0.0.1:0 with a 1 s peer exchange.
    pub fn init(&mut self, name: &str, department: &str, role: &str) -> NodeDir {
        let out = self.dx.ok(
            self.root.path(),
            &[
                "init",
                "--dir",
                name,
                "--department",
                department,
                "--role",
                role,
                "--anchor",
                "anchor.pub.pem",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
            ],
        );
        let node = NodeDir {
            name: name.into(),
            department: department.into(),
            role: role.into(),
            dir: self.root.path().join(name),
            peer_id: field(&out, "peer_id"),
        };
        edit_config(
            &node.dir,
            "peer_exchange_secs = 5",
            "peer_exchange_secs = 1",
        );
        self.nodes.push(node.clone());
        node
    }

    /// Writes and signs a roster draft with `members` (and `revoked`), as
    /// version 1 or as the successor of `previous`; returns the signed file.
    pub fn sign_roster(
        &self,
        file: &str,
        previous: Option<&str>,
        members: &[&NodeDir],
        revoked: &[&NodeDir],
    ) -> PathBuf {
        let draft = format!("{file}.toml");
        match previous {
            None => self.dx.ok(
                self.path(),
                &["roster", "new", "--mesh", "test-province", "--out", &draft],
            ),
            Some(p) => self.dx.ok(
                self.path(),
                &["roster", "new", "--from", p, "--out", &draft],
            ),
        };
        for m in members {
            self.dx.ok(
                self.path(),
                &[
                    "roster",
                    "add-member",
                    &draft,
                    "--peer-id",
                    &m.peer_id,
                    "--department",
                    &m.department,
                    "--role",
                    &m.role,
                    "--valid-from",
                    "2020-01-01",
                    "--valid-until",
                    "2099-01-01",
                ],
            );
        }
        for r in revoked {
            self.dx.ok(
                self.path(),
                &["roster", "revoke", &draft, "--peer-id", &r.peer_id],
            );
        }
        self.dx.ok(
            self.path(),
            &[
                "roster",
                "sign",
                &draft,
                "--anchor-key",
                "anchor.key",
                "--out",
                file,
            ],
        );
        self.path().join(file)
    }

    /// Installs signed roster files on `node` (running or not).
    pub fn install(&self, node: &NodeDir, files: &[&Path]) -> String {
        let mut args = vec!["roster", "install", "--dir"];
        let dir = node.dir.to_str().expect("utf-8 path");
        args.push(dir);
        let files: Vec<&str> = files
            .iter()
            .map(|f| f.to_str().expect("utf-8 path"))
            .collect();
        args.extend(files);
        self.dx.ok(self.path(), &args)
    }

    /// Starts `node`.
    pub fn start(&self, node: &NodeDir) -> NodeProc {
        NodeProc::start(&self.dx, node)
    }
}

/// Replaces `from` with `to` in the node's config.toml (as an operator would edit it).
pub fn edit_config(dir: &Path, from: &str, to: &str) {
    let path = dir.join("config.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    assert!(text.contains(from), "{from:?} not in {text}");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write config");
}

/// A running `dxmesh run` process.
pub struct NodeProc {
    /// Its directory.
    pub node: NodeDir,
    dx: Dxmesh,
    child: Option<Child>,
    log: PathBuf,
}

impl NodeProc {
    /// Starts the daemon and waits until it answers on its admin socket with a listen address.
    pub fn start(dx: &Dxmesh, node: &NodeDir) -> NodeProc {
        NodeProc::start_with_env(dx, node, &[])
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The node's status, if the daemon answers.
    pub fn try_status(&self) -> Option<StatusInfo> {
        let out = self.dx.run(
            &self.node.dir,
            &["status", "--json", "--dir", self.node.dir.to_str()?],
        );
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The node's status (panics if it does not answer).
    pub fn status(&self) -> StatusInfo {
        self.try_status().unwrap_or_else(|| {
            panic!(
                "{} does not answer; log:\n{}",
                self.node.name,
                self.log_text()
            )
        })
    }

    /// Its first listen address (with /p2p/).
    pub fn addr(&self) -> String {
        self.status().listen_addresses[0].clone()
    }

    /// Waits until `pred` holds for the status, or panics after `timeout` with the log.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&StatusInfo) -> bool,
    ) -> StatusInfo {
        let start = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(code)) = child.try_wait()
            {
                panic!(
                    "{} exited with {code} while waiting for {what}; log:\n{}",
                    self.node.name,
                    self.log_text()
                );
            }
            if let Some(s) = self.try_status()
                && pred(&s)
            {
                return s;
            }
            if start.elapsed() > timeout {
                panic!(
                    "{}: timed out waiting for {what}; last status: {:?}\nlog:\n{}",
                    self.node.name,
                    self.try_status(),
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for a clean exit; returns whether it exited with 0.
    pub fn stop(mut self) -> bool {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process with SIGKILL (a crash).
    pub fn kill(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The (department, role) pairs of the seven-node province.
pub const PROVINCE: [(&str, &str); 7] = [
    ("public_security", "provider"),
    ("civil_affairs", "provider"),
    ("health", "provider"),
    ("disabled_federation", "provider"),
    ("hr", "provider"),
    ("comparator", "comparator"),
    ("ministry", "ministry"),
];

/// Today's date (UTC) as `YYYY-MM-DD`, and `days` from today.
pub fn day(days: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    dxmesh_protocol::date::Date::from_days_since_epoch((now / 86_400) as i64 + days)
        .map(|d| d.to_string())
        .unwrap_or_default()
}

/// A terms file for the household registry feed, valid from yesterday for a
/// year, daily cycle anchored yesterday with a whole-day window.
pub fn registry_terms(max_pulls: u32, quota: u64) -> String {
    format!(
        r#"dataset = "registry"
token_group = "registration"
purpose_code = "registration/uninsured-outreach"
purpose = "Find registered residents without social insurance."
not_before = "{from}"
not_after = "{until}"
retention_days = 90
fields = [
  {{ name = "id_number", treatment = "token" }},
  {{ name = "name", treatment = "attr_token" }},
  {{ name = "region_code", treatment = "clear" }},
]
rows = [ {{ equals = {{ field = "status", value = "active" }} }}, {{ age_at_least = 16 }} ]
[cycle]
period = "daily"
anchor = "{from}"
window = "P1D"
max_pulls = {max_pulls}
[disclosure]
fields = ["id_number", "name", "address"]
result_kinds = ["uninsured"]
max_records_per_epoch = {quota}
"#,
        from = day(-1),
        until = day(365),
    )
}

impl NodeProc {
    /// Starts the daemon with extra environment variables (e.g. failpoints).
    pub fn start_with_env(dx: &Dxmesh, node: &NodeDir, env: &[(&str, &str)]) -> NodeProc {
        let log = node.dir.join("node.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut cmd = Command::new(&dx.bin);
        cmd.args(["run", "--dir"])
            .arg(&node.dir)
            .env("RUST_LOG", "info,dxmesh_node=debug")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn dxmesh run");
        let mut p = NodeProc {
            node: node.clone(),
            dx: dx.clone(),
            child: Some(child),
            log,
        };
        p.wait_for("a listen address", Duration::from_secs(20), |s| {
            !s.listen_addresses.is_empty()
        });
        p
    }

    /// Waits up to `timeout` for the process to exit on its own; returns whether it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(_)) = c.try_wait()
            {
                self.child = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Runs `dxmesh ARGS --dir <this node>` and returns stdout (panics on failure).
    pub fn cli(&self, args: &[&str]) -> String {
        let mut all: Vec<&str> = args.to_vec();
        all.push("--dir");
        let dir = self.node.dir.to_str().expect("utf-8");
        all.push(dir);
        self.dx.ok(&self.node.dir, &all)
    }

    /// Runs `dxmesh ARGS --dir <this node>`: (success, stdout + stderr).
    pub fn dx_run(&self, args: &[&str]) -> (bool, String) {
        let mut all: Vec<&str> = args.to_vec();
        all.push("--dir");
        let dir = self.node.dir.to_str().expect("utf-8");
        all.push(dir);
        let out = self.dx.run(&self.node.dir, &all);
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Runs `dxmesh ARGS --dir <this node>`, asserts failure, returns stderr.
    pub fn cli_fails(&self, args: &[&str]) -> String {
        let mut all: Vec<&str> = args.to_vec();
        all.push("--dir");
        let dir = self.node.dir.to_str().expect("utf-8");
        all.push(dir);
        self.dx.fails(&self.node.dir, &all)
    }

    /// The agreement list as JSON values.
    pub fn agreements(&self) -> Vec<serde_json::Value> {
        let out = self.cli(&["agreement", "list", "--json"]);
        serde_json::from_str(&out).expect("agreement list JSON")
    }

    /// Waits until the agreement `thread` has `status` (any, if `*`) and `steps` here.
    pub fn wait_agreement(&mut self, thread: &str, status: &str, steps: u64) {
        let start = Instant::now();
        loop {
            let list = self.agreements();
            if list.iter().any(|a| {
                a["thread"].as_str() == Some(thread)
                    && (status == "*" || a["status"].as_str() == Some(status))
                    && a["steps"].as_u64() == Some(steps)
                    && a["pending"].as_bool() == Some(false)
            }) {
                return;
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!(
                    "{}: agreement {thread} never reached {status} with {steps} steps: {list:?}\nlog:\n{}",
                    self.node.name,
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl NodeProc {
    /// Rewrites the node's config to listen on the port it has now, so a
    /// restart comes back on the same address (as a production node does).
    pub fn pin_port(&self) {
        let addr = self.addr();
        let port = addr
            .split('/')
            .skip_while(|p| *p != "tcp")
            .nth(1)
            .expect("a tcp port")
            .to_string();
        edit_config(
            &self.node.dir,
            "/ip4/127.0.0.1/tcp/0",
            &format!("/ip4/127.0.0.1/tcp/{port}"),
        );
    }
}

/// A valid resident ID number: region, birth date `YYYYMMDD`, sequence.
pub fn make_id(region: &str, birth: &str, seq: u32) -> String {
    let body = format!("{region}{birth}{:03}", seq % 1000);
    let check = dxmesh_protocol::id::check_character(body.as_bytes()) as char;
    format!("{body}{check}")
}

/// One row of a generated household registry.
#[derive(Debug, Clone)]
pub struct RegistryRow {
    /// The ID as written in the export (possibly dirty).
    pub raw_id: String,
    /// The normalised ID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Birth date `YYYY-MM-DD`.
    pub birth_date: String,
    /// Region code.
    pub region: String,
    /// Address.
    pub address: String,
    /// active / moved_out / cancelled.
    pub status: String,
}

impl RegistryRow {
    /// Whether the registry feed's row scope (active, 16 or older) keeps it.
    pub fn in_scope(&self) -> bool {
        let year: i32 = self.birth_date[..4].parse().unwrap_or(0);
        self.status == "active" && year <= 2000
    }
}

/// `n` registry rows: mostly active adults born 1940-2000, every 7th a minor
/// (born 2015), every 11th moved out; every 13th ID in a dirty but valid form.
pub fn registry_rows(n: usize) -> Vec<RegistryRow> {
    const SURNAMES: [&str; 8] = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵"];
    (0..n)
        .map(|i| {
            let year = if i % 7 == 3 { 2015 } else { 1940 + (i % 61) };
            let birth = format!("{year}{:02}{:02}", 1 + i % 12, 1 + i % 28);
            let region = format!("4401{:02}", 1 + (i / 1000) % 20);
            let id = make_id(&region, &birth, i as u32);
            let raw_id = match i % 13 {
                5 => id.to_lowercase(),
                6 => format!(" {}\u{3000}", id),
                7 => id
                    .chars()
                    .map(|c| {
                        if c.is_ascii_digit() {
                            char::from_u32(c as u32 + 0xFEE0).unwrap_or(c)
                        } else {
                            c
                        }
                    })
                    .collect(),
                _ => id.clone(),
            };
            RegistryRow {
                raw_id,
                name: format!("{}测{}号", SURNAMES[i % 8], i),
                birth_date: format!("{}-{}-{}", &birth[..4], &birth[4..6], &birth[6..]),
                region,
                address: format!("广州市某区某路{}号{}室", i, i % 100),
                status: if i % 11 == 4 {
                    "moved_out".into()
                } else {
                    "active".into()
                },
                id,
            }
        })
        .collect()
}

/// The registry export as CSV text.
pub fn registry_csv(rows: &[RegistryRow]) -> String {
    let mut s = String::from("id_number,name,gender,birth_date,region_code,address,status\n");
    for r in rows {
        s.push_str(&format!(
            "{},{},,{},{},{},{}\n",
            r.raw_id, r.name, r.birth_date, r.region, r.address, r.status
        ));
    }
    s
}

/// Makes `node` the key custodian of `group` (or points it at `custodian`).
pub fn set_custodian(node: &NodeDir, group: &str, custodian: &str) {
    edit_config(
        &node.dir,
        "[key_custodians]\n",
        &format!("[key_custodians]\n{group} = \"{custodian}\"\n"),
    );
}

/// Turns the daemon's own publishing and pulling off (tests drive them).
pub fn manual_schedule(node: &NodeDir) {
    edit_config(&node.dir, "auto_publish = true", "auto_publish = false");
    edit_config(&node.dir, "auto_pull = true", "auto_pull = false");
}

/// Every file under `dir` whose bytes contain any of `needles`: (file, needle).
pub fn scan_for(dir: &Path, needles: &[String]) -> Vec<(PathBuf, String)> {
    let ac = aho_corasick::AhoCorasick::new(needles.iter().filter(|n| !n.is_empty()))
        .expect("automaton");
    let needles: Vec<&String> = needles.iter().filter(|n| !n.is_empty()).collect();
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                for m in ac.find_overlapping_iter(&bytes) {
                    hits.push((p.clone(), needles[m.pattern().as_usize()].clone()));
                }
            }
        }
    }
    hits
}

/// Sends one control request to the node at `addr` as the identity in
/// `key_file`, from a bare libp2p client in this process (no dxmesh node
/// logic on our side): how tests play a misbehaving or foreign member.
pub fn raw_request(
    key_file: &Path,
    addr: &str,
    request: dxmesh_protocol::wire::Request,
) -> Result<dxmesh_protocol::wire::Response, String> {
    use futures::StreamExt;
    use libp2p::request_response::{Event, Message};
    use libp2p::swarm::SwarmEvent;
    let identity =
        dxmesh_node::base::keyfile::read_identity(key_file).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let mut swarm = dxmesh_node::daemon::net::build_swarm(&identity).map_err(|e| e.to_string())?;
        let ma: libp2p::Multiaddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
        let peer = ma
            .iter()
            .find_map(|p| match p {
                libp2p::multiaddr::Protocol::P2p(p) => Some(p),
                _ => None,
            })
            .ok_or("the address has no /p2p/")?;
        swarm.behaviour_mut().allow.allow_peer(peer);
        swarm.dial(ma).map_err(|e| e.to_string())?;
        let mut request = Some(request);
        let deadline = tokio::time::sleep(Duration::from_secs(20));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return Err("timed out".to_string()),
                ev = swarm.select_next_some() => match ev {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == peer => {
                        if let Some(r) = request.take() {
                            swarm.behaviour_mut().control.send_request(&peer, r);
                        }
                    }
                    SwarmEvent::Behaviour(dxmesh_node::daemon::net::BehaviourEvent::Control(Event::Message {
                        message: Message::Response { response, .. }, ..
                    })) => return Ok(response),
                    SwarmEvent::Behaviour(dxmesh_node::daemon::net::BehaviourEvent::Control(Event::OutboundFailure { error, .. })) => {
                        return Err(format!("request failed: {error}"));
                    }
                    SwarmEvent::OutgoingConnectionError { error, .. } => return Err(format!("cannot connect: {error}")),
                    SwarmEvent::ConnectionClosed { peer_id, .. } if peer_id == peer && request.is_none() => {
                        return Err("the node closed the connection".to_string());
                    }
                    _ => {}
                },
            }
        }
    })
}

/// A provider and the comparator with an active registry agreement.
pub struct Setup {
    /// The mesh.
    pub mesh: Mesh,
    /// Public security (provider, custodian of `registration`).
    pub ps: NodeDir,
    /// The comparator.
    pub cmp: NodeDir,
    /// The ministry (a roster member, not started).
    pub min: NodeDir,
    /// The running provider.
    pub pps: NodeProc,
    /// The running comparator.
    pub pcmp: NodeProc,
    /// Agreement id (hex).
    pub agreement: String,
    /// Thread id (hex).
    pub thread: String,
}

/// Makes an agreement: `consumer` proposes the terms at `terms` to the
/// provider (`provider`, peer id `provider_peer`), the provider accepts, and
/// the consumer is waited for until the thread is in `consumer_status` after
/// two steps (`"*"` for any). Returns (thread, agreement) as hex.
pub fn agree(
    consumer: &mut NodeProc,
    provider: &mut NodeProc,
    provider_peer: &str,
    terms: &Path,
    consumer_status: &str,
) -> (String, String) {
    let out = consumer.cli(&[
        "agreement",
        "propose",
        "--to",
        provider_peer,
        "--terms",
        terms.to_str().unwrap(),
    ]);
    let thread = field(&out, "thread");
    let agreement = field(&out, "agreement");
    provider.wait_agreement(&thread, "proposed", 1);
    provider.cli(&["agreement", "accept", &thread[..12]]);
    consumer.wait_agreement(&thread, consumer_status, 2);
    (thread, agreement)
}

/// Public security (provider, custodian of `registration`), the
/// comparator and a ministry node, with the registry imported and an agreement made from `terms`.
pub fn setup(bin: &str, rows: usize, terms: &str) -> (Setup, Vec<RegistryRow>) {
    let mut mesh = Mesh::new(bin);
    let ps = mesh.init("ps", "public_security", "provider");
    let cmp = mesh.init("cmp", "comparator", "comparator");
    let min = mesh.init("min", "ministry", "ministry");
    set_custodian(&ps, "registration", "self");
    manual_schedule(&ps);
    manual_schedule(&cmp);
    let roster = mesh.sign_roster("roster-v1", None, &[&ps, &cmp, &min], &[]);
    mesh.install(&ps, &[&roster]);
    mesh.install(&cmp, &[&roster]);
    let data = registry_rows(rows);
    std::fs::write(mesh.path().join("registry.csv"), registry_csv(&data)).unwrap();
    std::fs::write(mesh.path().join("terms.toml"), terms).unwrap();
    let out = mesh.import("ps", "registry", "registry.csv");
    assert!(
        out.contains(&format!("rows read:           {rows}")),
        "{out}"
    );
    let pcmp = mesh.start(&cmp);
    pcmp.pin_port();
    edit_config(
        &ps.dir,
        "bootstrap = []",
        &format!("bootstrap = [\"{}\"]", pcmp.addr()),
    );
    let mut pps = mesh.start(&ps);
    pps.wait_for("the comparator", Duration::from_secs(30), |s| {
        s.connected.len() == 1
    });
    let mut pcmp = pcmp;
    let (thread, agreement) = agree(
        &mut pcmp,
        &mut pps,
        &ps.peer_id,
        &mesh.path().join("terms.toml"),
        "*",
    );
    (
        Setup {
            mesh,
            ps,
            cmp,
            min,
            pps,
            pcmp,
            agreement,
            thread,
        },
        data,
    )
}

impl NodeProc {
    /// A stand-in with no process (to move a running one out of a struct).
    pub fn placeholder(dx: &Dxmesh, node: &NodeDir) -> NodeProc {
        NodeProc {
            node: node.clone(),
            dx: dx.clone(),
            child: None,
            log: node.dir.join("node.log"),
        }
    }
}

impl Setup {
    /// Stops the provider and starts it again with `env` (e.g. failpoints).
    pub fn restart_provider(&mut self, env: &[(&str, &str)]) {
        let old = std::mem::replace(
            &mut self.pps,
            NodeProc::placeholder(&self.mesh.dx, &self.ps),
        );
        old.kill();
        self.pps = NodeProc::start_with_env(&self.mesh.dx, &self.ps, env);
        self.pps
            .wait_for("the comparator", Duration::from_secs(30), |s| {
                !s.connected.is_empty()
            });
    }

    /// The provider's stored feed directory for the current epoch.
    pub fn provider_feed_dir(&self) -> PathBuf {
        self.ps
            .dir
            .join("data/feeds")
            .join(&self.agreement)
            .join("1")
    }

    /// The comparator's pulled feed directory for the current epoch.
    pub fn comparator_feed_dir(&self) -> PathBuf {
        self.cmp
            .dir
            .join("data/pulls")
            .join(&self.agreement)
            .join("1")
    }

    /// The bytes of pulled chunk `index` as the comparator stored them.
    pub fn comparator_chunk(&self, index: u32) -> Option<Vec<u8>> {
        dxmesh_node::pull::pulls::stored_chunk(&self.comparator_feed_dir(), index).map(|(_, b)| b)
    }
}
