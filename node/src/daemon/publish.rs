//! The daemon's publishing: feeds built by command (`dxmesh publish`) and
//! on schedule when an epoch starts, and the token group keys a provider
//! needs for them, asked from (or, at the custodian, handed out to) the
//! group's providers. Building runs on a blocking thread
//! ([`crate::publish::publish`]); the result comes back as an event.

use super::core::Core;
use super::error::{LocalError, NodeError, PeerError, RequestError};
use super::pending::{Answer, Event, Pending};
use super::trust::Trust;
use crate::admin::{AdminResponse, FeedInfo};
use crate::base::clock::now;
use crate::publish::build::{PublishInput, Published, publish};
use crate::publish::keys::KeyStore;
use crate::publish::store::{feed_dir, read_manifest};
use dxmesh_protocol::agreement::{AgreementId, Terms};
use dxmesh_protocol::codec;
use dxmesh_protocol::feed::Manifest;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::roster::Role;
use dxmesh_protocol::token::GroupMasterKey;
use dxmesh_protocol::wire::{Request, Response};
use libp2p::PeerId;
use std::collections::HashSet;
use tokio::sync::oneshot;

/// A publish waiting for its group key.
pub(super) struct WaitingPublish {
    group: String,
    /// The custodian refused: the schedule does not ask again, an
    /// operator's `dxmesh publish` does.
    refused: bool,
}

/// The publish desk: the token group keys, the publishes waiting for one,
/// and the feeds being built now.
pub(super) struct Publishing {
    /// Token group keys (providers only).
    keys: KeyStore,
    /// Publishes waiting for a group key, by group.
    waiting_for_key: Vec<WaitingPublish>,
    /// Feeds being built now, by (agreement, epoch).
    building: HashSet<(AgreementId, u64)>,
    /// Expired published feeds whose erasure this run has logged.
    erasure_logged: HashSet<(AgreementId, u64)>,
}

impl Publishing {
    /// The desk with the keys in `keys`.
    pub(super) fn new(keys: KeyStore) -> Publishing {
        Publishing {
            keys,
            waiting_for_key: Vec::new(),
            building: HashSet::new(),
            erasure_logged: HashSet::new(),
        }
    }

    /// `dxmesh publish`: build the feeds of one or every active agreement.
    pub(super) fn admin_publish(
        &mut self,
        core: &mut Core,
        (agreement, epoch, republish): (Option<String>, Option<u64>, bool),
        reply: oneshot::Sender<AdminResponse>,
    ) {
        let t = now();
        let me = core.identity.public();
        let threads: Vec<crate::agreements::threads::Thread> = match &agreement {
            Some(id) => match core.agreements.find(id) {
                Ok(th) => vec![th.clone()],
                Err(e) => {
                    let _ = reply.send(AdminResponse::Error {
                        message: e.to_string(),
                    });
                    return;
                }
            },
            None => core
                .agreements
                .threads()
                .filter(|th| {
                    th.state.terms.provider == me
                        && core.agreements.status(th, t)
                            == dxmesh_protocol::agreement::Status::Active
                })
                .cloned()
                .collect(),
        };
        let mut targets = Vec::new();
        for th in threads {
            let status = core.agreements.status(&th, t);
            if th.state.terms.provider != me {
                let _ = reply.send(AdminResponse::Error {
                    message: "this node is not the provider of that agreement".into(),
                });
                return;
            }
            if status != dxmesh_protocol::agreement::Status::Active {
                let _ = reply.send(AdminResponse::Error {
                    message: format!("the agreement is {status}, not active"),
                });
                return;
            }
            let e = match epoch.or_else(|| th.state.terms.cycle.epoch_at(t)) {
                Some(e) => e,
                None => {
                    let _ = reply.send(AdminResponse::Error {
                        message: "the agreement's cycle has not started".into(),
                    });
                    return;
                }
            };
            targets.push((th.state.terms.clone(), e));
        }
        if targets.is_empty() {
            let _ = reply.send(AdminResponse::Published { feeds: vec![] });
            return;
        }
        // The operator asks again for a key the custodian refused (after
        // an agreement was fixed); the schedule never does.
        self.waiting_for_key
            .retain(|w| !(w.refused && targets.iter().any(|(t, _)| t.token_group == w.group)));
        self.start_publish(core, targets, Some(reply), republish);
    }

    pub(super) fn on_group_key_answer(
        &mut self,
        core: &mut Core,
        peer: PeerId,
        group: String,
        answer: Response,
    ) -> bool {
        match answer {
            Response::GroupKey { group: g, key } if g == group => {
                if core.config.role != Role::Provider {
                    tracing::error!(%group, %peer, "refusing to store a token group key: this node's role is {}", core.config.role);
                    return false;
                }
                match self.keys.put(&group, &GroupMasterKey(key)) {
                    Ok(()) => {
                        tracing::info!(%group, custodian = %peer, "received the token group key");
                        if let Some(from) = PublicKey::from_peer_id(&peer) {
                            core.log(dxmesh_protocol::audit::Event::KeyReceived {
                                group: group.clone(),
                                from,
                            });
                        }
                        self.waiting_for_key.retain(|w| w.group != group);
                        return true;
                    }
                    Err(e) => {
                        tracing::error!(%group, error = %e, "cannot store the token group key")
                    }
                }
            }
            Response::Refused { reason } => {
                tracing::warn!(%group, %peer, ?reason, "the custodian refused our key request; `dxmesh publish` asks again");
                for w in self.waiting_for_key.iter_mut().filter(|w| w.group == group) {
                    w.refused = true;
                }
            }
            other => tracing::debug!(?other, "unexpected answer to a key request"),
        }
        false
    }

    /// The group key for `terms`, or `None` after asking the custodian for it.
    pub(super) fn group_key(
        &mut self,
        core: &mut Core,
        terms: &Terms,
    ) -> Result<Option<GroupMasterKey>, NodeError> {
        let group = terms.token_group.clone();
        match core.config.key_custodians.get(&group).cloned() {
            Some(c) if c == "self" => Ok(Some(self.keys.custodian_key(&group)?)),
            Some(custodian) => {
                if let Some(k) = self.keys.get(&group)? {
                    return Ok(Some(k));
                }
                if self.waiting_for_key.iter().any(|w| w.group == group) {
                    return Ok(None);
                }
                let peer: PeerId = custodian
                    .parse()
                    .map_err(|e| LocalError::Config(format!("key_custodians.{group}: {e}")))?;
                if !core.connected.contains(&peer) {
                    return Err(PeerError::NotConnected {
                        role: "custodian",
                        label: format!("of group {group:?} ({peer})"),
                    }
                    .into());
                }
                // The agreement being published proves what the key is for.
                let transcript = core
                    .agreements
                    .by_agreement(&terms.id())
                    .map(|t| t.steps.clone())
                    .unwrap_or_default();
                core.send(
                    peer,
                    Request::GroupKey {
                        group: group.clone(),
                        transcript,
                    },
                    Pending::GroupKey {
                        group: group.clone(),
                    },
                );
                self.waiting_for_key.push(WaitingPublish {
                    group,
                    refused: false,
                });
                Ok(None)
            }
            None => Err(LocalError::Config(format!(
                "no key custodian is configured for token group {group:?}: add `{group} = \"self\"` or the custodian's PeerId under [key_custodians] in config.toml"
            ))
            .into()),
        }
    }

    /// Starts building feeds for `targets` in the background.
    pub(super) fn start_publish(
        &mut self,
        core: &mut Core,
        targets: Vec<(Terms, u64)>,
        reply: Option<oneshot::Sender<AdminResponse>>,
        republish: bool,
    ) {
        let mut jobs = Vec::new();
        let mut errors = Vec::new();
        for (terms, epoch) in targets {
            let agreement = terms.id();
            if self.building.contains(&(agreement, epoch)) {
                errors.push((
                    agreement,
                    epoch,
                    RequestError::Busy { what: "build" }.into(),
                ));
                continue;
            }
            let key_result = if terms.is_tokenised() {
                self.group_key(core, &terms)
            } else {
                Ok(Some(GroupMasterKey([0; 32])))
            };
            match key_result {
                Ok(Some(master)) => {
                    let key = terms
                        .is_tokenised()
                        .then(|| master.epoch_key(&terms.token_group, epoch));
                    let previous = epoch
                        .checked_sub(1)
                        .and_then(|p| read_manifest(&core.data_dir, &agreement, p).ok().flatten())
                        .map(|m| m.digest());
                    self.building.insert((agreement, epoch));
                    jobs.push((terms, epoch, key, previous));
                }
                Ok(None) => {
                    let waiting = PeerError::WaitingForKey {
                        group: terms.token_group.clone(),
                    };
                    errors.push((agreement, epoch, waiting.into()))
                }
                Err(e) => errors.push((agreement, epoch, e)),
            }
        }
        let data_dir = core.data_dir.clone();
        let memory = core.config.limits.sort_bytes();
        let seed = *core.identity.seed();
        let internal = core.events.clone();
        tokio::task::spawn_blocking(move || {
            let mut results: Vec<(AgreementId, u64, Result<Published, NodeError>)> =
                errors.into_iter().map(|(a, e, m)| (a, e, Err(m))).collect();
            let identity = match dxmesh_protocol::identity::Identity::from_seed(seed) {
                Ok(i) => i,
                Err(e) => {
                    tracing::error!(error = %e, "identity unavailable for publishing");
                    return;
                }
            };
            for (terms, epoch, key, previous) in jobs {
                let started = std::time::Instant::now();
                let r = publish(&PublishInput {
                    data_dir: &data_dir,
                    terms: &terms,
                    epoch,
                    key: key.as_ref(),
                    identity: &identity,
                    previous,
                    now: now(),
                    republish,
                    memory,
                })
                .map_err(NodeError::from);
                if let Ok(Published {
                    manifest: m,
                    built: true,
                    ..
                }) = &r
                    && let Ok(man) = codec::decode::<Manifest>(m.body())
                {
                    tracing::info!(
                        dataset = %terms.dataset,
                        epoch,
                        records = man.records,
                        chunks = man.chunks(),
                        root = %dxmesh_protocol::hex(&man.root),
                        manifest = %dxmesh_protocol::hex(&m.digest()),
                        seconds = started.elapsed().as_secs_f64(),
                        "feed published"
                    );
                }
                results.push((terms.id(), epoch, r));
            }
            let _ = internal.send(Event::Published { results, reply });
        });
    }

    /// Hands the group key to `requester` once its request is checked
    /// (`checked`), or refuses it.
    pub(super) fn hand_key(
        &mut self,
        core: &mut Core,
        trust: &mut Trust,
        to: Answer,
        requester: PublicKey,
        group: String,
        checked: Result<(), String>,
    ) {
        if let Err(why) = checked {
            return refuse_key(core, trust, to, &group, why);
        }
        match self.keys.custodian_key(&group) {
            Ok(key) => {
                tracing::info!(%group, to = %trust.label(&requester), "token group key handed to a provider");
                core.log(dxmesh_protocol::audit::Event::KeyDistributed {
                    group: group.clone(),
                    to: requester,
                });
                core.respond(to, Response::GroupKey { group, key: key.0 });
            }
            Err(e) => {
                let why = format!("the custodian cannot read its key: {e}");
                refuse_key(core, trust, to, &group, why)
            }
        }
    }

    /// Erases published feeds whose agreement's retention has ended (on
    /// every tick), as the consumer erases its pulled copies: logged, the
    /// manifest kept as evidence, then the feed and its private index; the
    /// dataset generation it read is no longer kept for it.
    pub(super) fn enforce_retention(&mut self, core: &mut Core) {
        let root = crate::base::layout::FEEDS;
        if let Err(e) = crate::pull::retention::finish_interrupted(&core.data_dir, root) {
            tracing::error!(error = %e, "cannot finish erasing an expired feed");
        }
        for gone in core.expired_feeds(true, now().date()) {
            if self.building.contains(&(gone.agreement, gone.epoch))
                || !core.erase_expired(root, &gone, &mut self.erasure_logged)
            {
                continue;
            }
            let Some(dataset) = core
                .agreements
                .by_agreement(&gone.agreement)
                .map(|t| t.state.terms.dataset.clone())
            else {
                continue;
            };
            let holder = crate::publish::build::pin_holder(&gone.agreement, gone.epoch);
            if let Err(e) = crate::dataset::unpin(&core.data_dir, &dataset, &holder) {
                tracing::warn!(error = %e, %dataset, "cannot release the generation an erased feed read");
            }
        }
    }

    /// The feeds due to be built now (on every tick, if the schedule
    /// publishes): each active agreement this node provides whose current
    /// epoch is not built or being built, whose dataset is imported, and
    /// whose group key is not still awaited.
    pub(super) fn due(&self, core: &Core) -> Vec<(Terms, u64)> {
        if !core.config.schedule.auto_publish {
            return Vec::new();
        }
        let mut due = Vec::new();
        for (terms, epoch) in core.current_feeds(true) {
            let agreement = terms.id();
            if self.building.contains(&(agreement, epoch)) {
                continue;
            }
            let published = feed_dir(&core.data_dir, &agreement, epoch)
                .join(crate::base::layout::MANIFEST_FILE)
                .exists();
            let imported = crate::dataset::current_dir(&core.data_dir, &terms.dataset).is_ok();
            let waiting = self
                .waiting_for_key
                .iter()
                .any(|w| w.group == terms.token_group);
            if !published && imported && !waiting {
                due.push((terms.clone(), epoch));
            }
        }
        due
    }

    /// Background publishing ended: log each feed built (and what it
    /// superseded), answer the operator.
    pub(super) fn on_published(
        &mut self,
        core: &mut Core,
        results: Vec<(AgreementId, u64, Result<Published, NodeError>)>,
        reply: Option<oneshot::Sender<AdminResponse>>,
    ) {
        let mut feeds_out = Vec::new();
        let mut errors = Vec::new();
        for (agreement, epoch, r) in results {
            self.building.remove(&(agreement, epoch));
            match r {
                Ok(p) => {
                    if let Some(info) = published(core, agreement, epoch, &p) {
                        feeds_out.push(info);
                    }
                }
                Err(e) => {
                    tracing::warn!(agreement = %dxmesh_protocol::hex(&agreement), epoch, error = %e, "feed not published");
                    errors.push(format!(
                        "agreement {} epoch {epoch}: {e}",
                        &dxmesh_protocol::hex(&agreement)[..16]
                    ));
                }
            }
        }
        if let Some(r) = reply {
            let response = if errors.is_empty() {
                AdminResponse::Published { feeds: feeds_out }
            } else {
                AdminResponse::Error {
                    message: errors.join("; "),
                }
            };
            let _ = r.send(response);
        }
    }
}

/// Refuses a group key request: answered `Refused { Key }`; the same
/// refusal repeated by a member (a flood of one request) is logged at
/// most once a minute, with the count of the others in the next entry.
pub(super) fn refuse_key(core: &mut Core, trust: &mut Trust, to: Answer, group: &str, why: String) {
    let reason = format!("for {group:?}: {why}");
    trust.refuse_throttled(core, to.peer, ("group key", reason.clone()), reason);
    core.respond(
        to,
        Response::Refused {
            reason: dxmesh_protocol::wire::Refusal::Key(why),
        },
    );
}

/// Logs a feed built (and the manifest it superseded) and says what the
/// operator should know of it: an import after it, or what it superseded.
fn published(
    core: &mut Core,
    agreement: AgreementId,
    epoch: u64,
    p: &Published,
) -> Option<FeedInfo> {
    let m = codec::decode::<Manifest>(p.manifest.body()).ok()?;
    let digest = p.manifest.digest();
    if p.built {
        core.log(dxmesh_protocol::audit::Event::FeedPublished {
            agreement,
            epoch,
            manifest: digest,
            records: m.records,
        });
    }
    if let Some(old) = p.superseded {
        core.log(dxmesh_protocol::audit::Event::FeedSuperseded {
            agreement,
            epoch,
            superseded: old,
            by: digest,
        });
    }
    let id = dxmesh_protocol::hex(&agreement);
    let note = match (p.newer_import, p.superseded) {
        (Some(current), _) => Some(format!(
            "this feed was built from generation {} of dataset {}, which has been imported since (generation {current}); its pulls and disclosures keep using generation {}. To publish the new import for this epoch: dxmesh publish --agreement {} --epoch {epoch} --republish",
            p.generation,
            m.dataset,
            p.generation,
            &id[..16]
        )),
        (None, Some(old)) => Some(format!(
            "republished from generation {}: supersedes manifest {}; the consumer pulls it again (within max_pulls) when it next pulls or compares",
            p.generation,
            dxmesh_protocol::hex(&old)
        )),
        (None, None) => None,
    };
    if let Some(n) = &note {
        tracing::warn!(agreement = %id, epoch, "{n}");
    }
    Some(FeedInfo {
        agreement: id,
        dataset: m.dataset.clone(),
        epoch,
        records: m.records,
        chunks: m.chunks(),
        root: dxmesh_protocol::hex(&m.root),
        manifest: dxmesh_protocol::hex(&digest),
        note,
    })
}
