//! [`NodeProc`]: one running `dxmesh run` process, driven through its
//! command line and admin socket; killed when dropped, so no test leaves a
//! process behind.

use crate::command::Dxmesh;
use crate::node_dir::{NodeDir, edit_config};
use dxmesh_node::admin::StatusInfo;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

    /// Waits until `witness` has cosigned this node's latest checkpoint
    /// (and there is one), as `status` shows; panics after 30 s.
    pub fn wait_witnessed(&mut self, witness: &NodeDir) -> StatusInfo {
        let peer = witness.peer_id.clone();
        self.wait_for(
            &format!("{} to witness the log", witness.name),
            Duration::from_secs(30),
            |s| {
                s.audit.sealed > 0
                    && s.audit
                        .witnesses
                        .iter()
                        .any(|w| w.peer_id == peer && w.cosigned >= s.audit.sealed)
            },
        )
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

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
