//! The daemon's audit traffic: logging agreement steps and imports,
//! witnessing peers' checkpoints (asking peers to witness ours is
//! `witness.rs`'s), retention warnings, and the admin requests for alerts
//! and evidence bundles.

use super::node::Node;
use crate::admin::AdminResponse;
use crate::audit::log::{self, BundleNode, Witness};
use crate::base::clock::now;
use dxmesh_protocol::audit::Event;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::merkle::ConsistencyProof;
use dxmesh_protocol::wire::{Refusal, Response};
use libp2p::PeerId;
use std::path::Path;

impl Node {
    /// Logs imports the node has not logged yet (imports run in another
    /// process): every receipt an import left, oldest first, each removed
    /// once its entry is durable; then the current generation of each
    /// dataset, in case an import died between `CURRENT` and its receipt.
    /// An import is logged once: a crash between the entry and the mark
    /// logs it again at the next start rather than never.
    pub(super) fn log_imports(&mut self) {
        for (file, r) in crate::dataset::receipts(&self.core.data_dir) {
            if self.log_import(&r)
                && let Err(e) = std::fs::remove_file(&file)
            {
                tracing::warn!(file = %file.display(), error = %e, "cannot remove a logged import receipt");
            }
        }
        if let Ok(reports) = crate::dataset::list(&self.core.data_dir) {
            for r in reports {
                self.log_import(&r);
            }
        }
    }

    /// Logs one import unless it was logged before; whether it is logged now.
    fn log_import(&mut self, r: &crate::dataset::ImportReport) -> bool {
        let key = format!("import/{}/{}", r.dataset, r.generation).into_bytes();
        if self.core.store.audit_meta(&key).ok().flatten().is_some() {
            return true;
        }
        let logged = self.core.log_durably(Event::Imported {
            dataset: r.dataset.clone(),
            generation: r.generation,
            rows_read: r.rows_read,
            rows_kept: r.rows_kept,
            rows_quarantined: r.rows_quarantined,
            source_sha256: r.source_sha256.clone(),
        });
        if logged.is_err() {
            return false;
        }
        self.core.store.set_audit_meta(&key, b"1").is_ok()
    }

    /// Has the national index of every dataset an agreement lets a
    /// consumer query built in the background, once per imported
    /// generation, so that the first ministry query does not wait for it.
    pub(super) fn prepare_national_indexes(&self) {
        let me = self.core.identity.public();
        let datasets: std::collections::BTreeSet<&str> = self
            .core
            .agreements
            .threads()
            .map(|t| &t.state.terms)
            .filter(|t| t.provider == me && crate::ministry::answers_ministry_queries(t))
            .map(|t| t.dataset.as_str())
            .collect();
        for dataset in datasets {
            self.national.prepare(&self.core.data_dir, dataset);
        }
    }

    /// The witness side of `Request::Witness`.
    pub(super) fn on_witness_request(
        &mut self,
        peer: PeerId,
        note: String,
        proof: Option<ConsistencyProof>,
    ) -> Response {
        let Some(key) = PublicKey::from_peer_id(&peer) else {
            return Response::Refused {
                reason: Refusal::Fork("unknown key".into()),
            };
        };
        match log::witness(
            &self.core.store,
            &self.core.identity,
            &key,
            &note,
            proof.as_ref(),
            now(),
        ) {
            // The cosigned checkpoint is kept as evidence (the newest of
            // each peer, exported as `witnessed/<peer>.note`), not logged:
            // an entry would make a new checkpoint for the peer to witness
            // in turn, and an idle mesh's logs would grow by themselves.
            Ok((Witness::Accept, Some(line), Some(cp))) => Response::Cosigned {
                size: cp.size,
                line,
            },
            Ok((Witness::NeedProof(from), _, _)) => Response::NeedProof { from },
            Ok((Witness::Fork(reason), _, cp)) => {
                tracing::error!(peer = %self.trust.label(&key), %reason, "SECURITY ALERT: a peer's audit log is inconsistent with what it showed before; evidence kept");
                let earlier = 0;
                self.core.log(Event::ForkDetected {
                    peer: key,
                    earlier_size: earlier,
                    later_size: cp.map(|c| c.size).unwrap_or(0),
                });
                self.trust.record_refusal(
                    &mut self.core,
                    Some(peer),
                    None,
                    format!("audit fork: {reason}"),
                );
                Response::Refused {
                    reason: Refusal::Fork(reason),
                }
            }
            Ok(_) => Response::Refused {
                reason: Refusal::Fork("internal".into()),
            },
            Err(e) => {
                tracing::warn!(%peer, error = %e, "a checkpoint to witness does not verify");
                Response::Refused {
                    reason: Refusal::Fork(format!("the checkpoint does not verify: {e}")),
                }
            }
        }
    }

    pub(super) fn audit_alerts(&self) -> AdminResponse {
        match log::evidence(&self.core.store) {
            Ok(list) => AdminResponse::AuditAlerts {
                alerts: list
                    .iter()
                    .map(|e| serde_json::to_string_pretty(e).unwrap_or_default())
                    .collect(),
                retention: self.retention_warnings(),
            },
            Err(e) => AdminResponse::Error {
                message: e.to_string(),
            },
        }
    }

    /// The pulled feeds whose retention ends within a week while result
    /// commitments of their epoch are kept: once erased, those commitments
    /// can no longer be recomputed, so an auditor should export this
    /// node's bundle and feeds and run `dxmesh audit recompute` first.
    pub(super) fn retention_warnings(&self) -> Vec<String> {
        let Some(in_a_week) = now().date().add_days(7) else {
            return Vec::new();
        };
        super::pull::Pulling::expired_pulls(&self.core, in_a_week)
            .into_iter()
            .filter(|e| {
                crate::compare::commit::epoch_dir(&self.core.data_dir, e.epoch).exists()
            })
            .map(|e| {
                format!(
                    "the pulled feed of agreement {} epoch {} is kept until {}, then erased; the result commitments of epoch {} can be recomputed only until then: export this node's bundle and run `dxmesh audit recompute` before",
                    &dxmesh_protocol::hex(&e.agreement)[..12],
                    e.epoch,
                    e.kept_until,
                    e.epoch
                )
            })
            .collect()
    }

    pub(super) fn audit_export(&mut self, out: &str, dir: &Path) -> AdminResponse {
        self.core.seal_audit();
        let node = BundleNode {
            peer_id: self.core.identity.peer_id().to_string(),
            department: self.core.config.department.clone(),
            role: self.core.config.role.to_string(),
            origin: format!("dxmesh/{}", self.core.identity.peer_id()),
            exported_at: now().to_string(),
        };
        let anchor = self.trust.anchor.to_pem();
        let transcripts: Vec<_> = self
            .core
            .agreements
            .threads()
            .filter_map(|t| {
                dxmesh_protocol::codec::encode(&t.steps)
                    .ok()
                    .map(|b| (t.state.thread, b))
            })
            .collect();
        let _ = dir;
        match log::export(
            &self.core.store,
            &self.core.identity,
            &self.core.data_dir,
            &node,
            &anchor,
            &transcripts,
            Path::new(out),
        ) {
            Ok(entries) => AdminResponse::AuditExported {
                entries,
                out: out.to_string(),
            },
            Err(e) => AdminResponse::Error {
                message: e.to_string(),
            },
        }
    }
}
