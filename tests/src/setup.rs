//! [`Setup`]: a provider and the comparator with an active registry
//! agreement, made by [`setup`]; [`agree`] makes an agreement between two
//! running nodes.

use crate::command::field;
use crate::mesh::Mesh;
use crate::node_dir::{NodeDir, edit_config, manual_schedule, set_custodian};
use crate::node_proc::NodeProc;
use crate::registry::{RegistryRow, registry_csv, registry_rows};
use std::path::{Path, PathBuf};
use std::time::Duration;

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

impl Setup {
    /// Stops the provider and starts it again with `env` (e.g. failpoints).
    pub fn restart_provider(&mut self, env: &[(&str, &str)]) {
        self.restart_provider_with(env, |_| {});
    }

    /// Kills the provider, runs `while_stopped` on its data directory (to
    /// damage its state as a failing disk would), and starts it again with
    /// `env`.
    pub fn restart_provider_with(
        &mut self,
        env: &[(&str, &str)],
        while_stopped: impl FnOnce(&Path),
    ) {
        let old = std::mem::replace(
            &mut self.pps,
            NodeProc::placeholder(&self.mesh.dx, &self.ps),
        );
        old.kill();
        while_stopped(&self.ps.dir.join("data"));
        self.pps = NodeProc::start_with_env(&self.mesh.dx, &self.ps, env);
        self.pps
            .wait_for("the comparator", Duration::from_secs(30), |s| {
                !s.connected.is_empty()
            });
    }

    /// `dxmesh disclose` of the first `first` tokens of the comparator's
    /// kept commitment of result `kind`, for `fields` (comma-separated):
    /// its output, or its error.
    pub fn disclose(&self, kind: &str, fields: &str, first: &str) -> Result<String, String> {
        let dir = self.cmp.dir.to_str().unwrap();
        let args = [
            "disclose",
            "--agreement",
            &self.agreement[..12],
            "--kind",
            kind,
            "--fields",
            fields,
            "--first",
            first,
            "--dir",
            dir,
        ];
        let out = self.mesh.dx.run(self.mesh.path(), &args);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into())
        }
    }

    /// Waits until the provider has recorded a refusal whose reason
    /// contains `code`.
    pub fn provider_recorded(&mut self, code: &str) {
        let code = code.to_string();
        self.pps.wait_for(
            &format!("a `{code}` refusal"),
            Duration::from_secs(20),
            |st| st.refusals.iter().any(|r| r.reason.contains(&code)),
        );
    }

    /// Has the comparator run [`crate::registry::REGISTRY_JOB`], which
    /// commits to its result (every registry token), so that
    /// `dxmesh disclose --kind uninsured` can ask for any of them. Returns
    /// the result's size.
    pub fn commit_results(&self) -> u64 {
        let summary = self.compare(crate::registry::REGISTRY_JOB, "committed");
        summary["results"]["uninsured"]["count"].as_u64().unwrap()
    }

    /// Has the comparator run the job file `jobs` (its text) into the
    /// folder `name` of the mesh; returns its `summary.json`.
    pub fn compare(&self, jobs: &str, name: &str) -> serde_json::Value {
        let file = self.mesh.path().join(format!("{name}.toml"));
        std::fs::write(&file, jobs).unwrap();
        let out = self.mesh.path().join(name);
        let _ = std::fs::remove_dir_all(&out);
        self.pcmp.cli(&[
            "compare",
            "--jobs",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
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
