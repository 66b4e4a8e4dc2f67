//! [`Mesh`]: a trust anchor, a roster and node directories under one
//! temporary directory; [`PROVINCE`]: the seven-node province.

use crate::command::{Dxmesh, field};
use crate::node_dir::{NodeDir, edit_config};
use crate::node_proc::NodeProc;
use std::path::{Path, PathBuf};

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
    /// `dxmesh audit verify` of `bundle` against the mesh's anchor, as a
    /// security officer runs it; its output, however it ends.
    pub fn audit_verify(&self, bundle: &Path) -> std::process::Output {
        let bundle = bundle.to_str().expect("utf-8 path");
        self.dx.run(
            self.path(),
            &["audit", "verify", bundle, "--anchor", "anchor.pub.pem"],
        )
    }

    /// `dxmesh audit recompute` of the comparator's `bundle` against the
    /// mesh's anchor, from its pulled feeds under `feeds`, with the
    /// providers' bundles `providers`; its output, however it ends.
    pub fn audit_recompute(
        &self,
        bundle: &Path,
        feeds: &Path,
        providers: &[&Path],
    ) -> std::process::Output {
        let path = |p: &Path| p.to_str().expect("utf-8 path").to_string();
        let mut args: Vec<String> = vec![
            "audit".into(),
            "recompute".into(),
            "--bundle".into(),
            path(bundle),
            "--anchor".into(),
            "anchor.pub.pem".into(),
            "--feeds".into(),
            path(feeds),
        ];
        for p in providers {
            args.push("--provider".into());
            args.push(path(p));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.dx.run(self.path(), &args)
    }

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
                "--console",
                "127.0.0.1:0",
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
