//! Operational metrics in the Prometheus text format (`/metrics` on the
//! console's address), with `prometheus-client`. Most are counted from the
//! audit events the node appends ([`Metrics::observe`]): what the log
//! records and what the metrics count cannot drift apart. The rest are
//! set where they change: peers connected, the audit log's size, bytes
//! and chunks pulled, and the stages of the comparator's last cycle (read
//! from its `summary.json` when scraped). Counters start at zero when the
//! node starts.

use dxmesh_protocol::audit::Event;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

/// A refusal's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    /// What was refused: `pull`, `disclosure`, `ministry query`, `connection`, ...
    kind: String,
    /// The refusal code (`not_in_scope`, `over_quota`, ...).
    code: String,
    /// The requester's PeerId, or `unknown`.
    peer: String,
}

/// `served` (provider) or `received` (consumer).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Direction {
    direction: String,
}

/// A stage of the comparator's cycle (`pull`, `pass`, ...).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Stage {
    stage: String,
}

/// `ok` or `failed`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: String,
}

type Seconds = Gauge<f64, AtomicU64>;

/// Every metric of the node.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pulls: Counter,
    pulls_served: Counter,
    pull_bytes: Counter,
    chunks_verified: Counter,
    feeds_published: Counter,
    refusals: Family<RefusalLabels, Counter>,
    disclosures: Family<Direction, Counter>,
    disclosed_records: Family<Direction, Counter>,
    ministry_queries: Counter,
    audit_entries: Gauge,
    peers_connected: Gauge,
    cycle_seconds: Family<Stage, Seconds>,
    logins: Family<Outcome, Counter>,
    /// The refusals again, for the console's table.
    refusal_table: Mutex<BTreeMap<(String, String, String), u64>>,
    /// Where the comparator's last cycle wrote its results.
    last_compare: Mutex<Option<PathBuf>>,
    /// Which node this is, as the login page says it.
    node: Mutex<String>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// The metrics, registered and at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("dxmesh");
        let m = Metrics {
            registry: Registry::default(),
            pulls: Counter::default(),
            pulls_served: Counter::default(),
            pull_bytes: Counter::default(),
            chunks_verified: Counter::default(),
            feeds_published: Counter::default(),
            refusals: Family::default(),
            disclosures: Family::default(),
            disclosed_records: Family::default(),
            ministry_queries: Counter::default(),
            audit_entries: Gauge::default(),
            peers_connected: Gauge::default(),
            cycle_seconds: Family::default(),
            logins: Family::default(),
            refusal_table: Mutex::default(),
            node: Mutex::default(),
            last_compare: Mutex::default(),
        };
        let r = &mut registry;
        r.register(
            "pulls",
            "Feeds pulled completely by this node",
            m.pulls.clone(),
        );
        r.register(
            "pulls_served",
            "Pulls this node opened for consumers",
            m.pulls_served.clone(),
        );
        r.register(
            "pull_bytes",
            "Bytes of feed chunks pulled",
            m.pull_bytes.clone(),
        );
        r.register(
            "chunks_verified",
            "Feed chunks pulled and verified against their signed manifest",
            m.chunks_verified.clone(),
        );
        r.register(
            "feeds_published",
            "Feeds built and signed",
            m.feeds_published.clone(),
        );
        r.register(
            "refusals",
            "Requests and connections refused, by kind, code and peer",
            m.refusals.clone(),
        );
        r.register(
            "disclosures",
            "Disclosures served (provider) and received (consumer)",
            m.disclosures.clone(),
        );
        r.register(
            "disclosed_records",
            "Records disclosed, served and received",
            m.disclosed_records.clone(),
        );
        r.register(
            "ministry_queries",
            "Ministry queries answered or sent",
            m.ministry_queries.clone(),
        );
        r.register(
            "audit_log_entries",
            "Entries in the audit log",
            m.audit_entries.clone(),
        );
        r.register(
            "peers_connected",
            "Roster members connected now",
            m.peers_connected.clone(),
        );
        r.register(
            "last_cycle_seconds",
            "Duration of each stage of the comparator's last cycle",
            m.cycle_seconds.clone(),
        );
        r.register(
            "console_logins",
            "Console logins, by outcome",
            m.logins.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts what an audit event records.
    pub fn observe(&self, event: &Event) {
        let label = |l: &str| Direction {
            direction: l.to_string(),
        };
        match event {
            Event::PullCompleted { .. } => {
                self.pulls.inc();
            }
            Event::PullServed { new_pull: true, .. } => {
                self.pulls_served.inc();
            }
            Event::FeedPublished { .. } => {
                self.feeds_published.inc();
            }
            Event::RequestRefused {
                kind,
                requester,
                refusal,
                ..
            } => {
                self.refused(RefusalLabels {
                    kind: kind.clone(),
                    code: refusal.code().to_string(),
                    peer: requester.map_or("unknown".into(), |k| k.peer_id().to_string()),
                });
            }
            Event::PeerRefused { peer, .. } => {
                self.refused(RefusalLabels {
                    kind: "connection".into(),
                    code: "peer_refused".into(),
                    peer: peer.map_or("unknown".into(), |k| k.peer_id().to_string()),
                });
            }
            Event::DisclosureServed { records, .. } => {
                self.disclosures.get_or_create(&label("served")).inc();
                self.disclosed_records
                    .get_or_create(&label("served"))
                    .inc_by(*records);
            }
            Event::DisclosureReceived { records, .. } => {
                self.disclosures.get_or_create(&label("received")).inc();
                self.disclosed_records
                    .get_or_create(&label("received"))
                    .inc_by(*records);
            }
            Event::MinistryQuery { .. } => {
                self.ministry_queries.inc();
            }
            Event::ConsoleLogin { ok, .. } => {
                let outcome = if *ok { "ok" } else { "failed" };
                self.logins
                    .get_or_create(&Outcome {
                        outcome: outcome.to_string(),
                    })
                    .inc();
            }
            _ => {}
        }
    }

    fn refused(&self, labels: RefusalLabels) {
        self.refusals.get_or_create(&labels).inc();
        let mut t = self.refusal_table.lock().unwrap_or_else(|p| p.into_inner());
        *t.entry((labels.kind, labels.code, labels.peer))
            .or_default() += 1;
    }

    /// Refusals since the node started: `((kind, code, peer), count)`.
    pub fn refusal_counts(&self) -> Vec<((String, String, String), u64)> {
        let t = self.refusal_table.lock().unwrap_or_else(|p| p.into_inner());
        t.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// A pull run ended: the bytes and chunks it received (each verified
    /// against the signed manifest as it arrived).
    pub fn pulled(&self, bytes: u64, chunks: u32) {
        self.pull_bytes.inc_by(bytes);
        self.chunks_verified.inc_by(u64::from(chunks));
    }

    /// The comparator's cycle writes its results to `out`.
    pub fn compare_started(&self, out: PathBuf) {
        *self.last_compare.lock().unwrap_or_else(|p| p.into_inner()) = Some(out);
    }

    /// Where the last cycle wrote its results.
    pub fn last_compare(&self) -> Option<PathBuf> {
        self.last_compare
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Which node this is (name, department, role, mesh), for pages shown
    /// before a login.
    pub fn set_node(&self, label: String) {
        *self.node.lock().unwrap_or_else(|p| p.into_inner()) = label;
    }

    /// Which node this is, as [`Metrics::set_node`] last said.
    pub fn node(&self) -> String {
        self.node.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The audit log's size now.
    pub fn audit_size(&self, entries: u64) {
        self.audit_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    /// Roster members connected now.
    pub fn peers(&self, connected: usize) {
        self.peers_connected
            .set(i64::try_from(connected).unwrap_or(i64::MAX));
    }

    /// The stages of the comparator's last cycle (`timing_secs` of its summary).
    pub fn cycle_stages(&self, stages: &[(String, f64)]) {
        for (stage, secs) in stages {
            self.cycle_seconds
                .get_or_create(&Stage {
                    stage: stage.clone(),
                })
                .set(*secs);
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_counted_and_rendered() {
        let m = Metrics::new();
        m.observe(&Event::ConsoleLogin {
            user: "alice".into(),
            role: None,
            ok: false,
        });
        m.peers(3);
        m.cycle_stages(&[("pass".into(), 2.5)]);
        let text = m.render();
        assert!(
            text.contains("dxmesh_console_logins_total{outcome=\"failed\"} 1"),
            "{text}"
        );
        assert!(text.contains("dxmesh_peers_connected 3"), "{text}");
        assert!(
            text.contains("dxmesh_last_cycle_seconds{stage=\"pass\"} 2.5"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
