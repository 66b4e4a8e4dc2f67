//! The daemon's publishing: feeds built by command (`dxmesh publish`) and
//! on schedule when an epoch starts, and the token group keys a provider
//! needs for them, asked from (or, at the custodian, handed out to) the
//! group's providers. Building runs on a blocking thread
//! ([`crate::publish::publish`]); the result comes back as an event.

use super::error::{LocalError, NodeError, PeerError, RequestError};
use super::node::{Answer, Event, Node, Pending, WaitingPublish};
use crate::admin::{AdminResponse, FeedInfo};
use crate::base::clock::now;
use crate::publish::build::{PublishInput, publish};
use crate::publish::store::{feed_dir, read_manifest};
use crate::pull::pulls;
use dxmesh_protocol::agreement::{AgreementId, Step, Terms};
use dxmesh_protocol::codec;
use dxmesh_protocol::feed::Manifest;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::roster::Role;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::token::GroupMasterKey;
use dxmesh_protocol::wire::{Request, Response};
use libp2p::PeerId;
use std::time::Instant;
use tokio::sync::oneshot;

impl Node {
    /// `dxmesh publish`: build the feeds of one or every active agreement.
    pub(super) fn admin_publish(
        &mut self,
        agreement: Option<String>,
        epoch: Option<u64>,
        reply: oneshot::Sender<AdminResponse>,
    ) {
        let t = now();
        let me = self.core.identity.public();
        let threads: Vec<crate::agreements::threads::Thread> = match &agreement {
            Some(id) => match self.core.agreements.find(id) {
                Ok(th) => vec![th.clone()],
                Err(e) => {
                    let _ = reply.send(AdminResponse::Error {
                        message: e.to_string(),
                    });
                    return;
                }
            },
            None => self
                .core
                .agreements
                .threads()
                .filter(|th| {
                    th.state.terms.provider == me
                        && self.core.agreements.status(th, t)
                            == dxmesh_protocol::agreement::Status::Active
                })
                .cloned()
                .collect(),
        };
        let mut targets = Vec::new();
        for th in threads {
            let status = self.core.agreements.status(&th, t);
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
        self.start_publish(targets, Some(reply));
    }

    pub(super) fn on_group_key_request(
        &mut self,
        group: String,
        transcript: Vec<Signed<Step>>,
        to: Answer,
    ) {
        let peer = to.peer;
        if self
            .core
            .config
            .key_custodians
            .get(&group)
            .map(String::as_str)
            != Some("self")
        {
            let why = "this node is not the custodian of that group".to_string();
            return self.refuse_key(to, &group, why);
        }
        let Some(requester) = PublicKey::from_peer_id(&peer) else {
            return self.refuse_key(to, &group, "unknown requester key".into());
        };
        // The group's purpose: this custodian's own accepted or active
        // agreements in the group, as provider.
        let t = now();
        let me = self.core.identity.public();
        let own: Vec<Terms> = self
            .core
            .agreements
            .threads()
            .filter(|th| {
                th.state.terms.provider == me
                    && th.state.terms.token_group == group
                    && matches!(
                        self.core.agreements.status(th, t),
                        dxmesh_protocol::agreement::Status::Active
                            | dxmesh_protocol::agreement::Status::Accepted
                    )
            })
            .map(|th| th.state.terms.clone())
            .collect();
        let Some((_, roster)) = self.roster.clone() else {
            return self.refuse_key(to, &group, "no roster".into());
        };
        // Replaying the transcript (up to 1,000 signed steps) is the heavy
        // part: it runs off the event loop.
        self.off_loop(
            move || {
                let checked = crate::publish::keys::check_key_request(
                    &roster,
                    &requester,
                    &group,
                    &transcript,
                    &own,
                    t,
                )
                .map_err(|e| e.to_string());
                (group, checked)
            },
            move |node, (group, checked)| {
                if let Err(why) = checked {
                    return node.refuse_key(to, &group, why);
                }
                match node.keys.custodian_key(&group) {
                    Ok(key) => {
                        tracing::info!(%group, to = %node.label(&requester), "token group key handed to a provider");
                        node.core.log(dxmesh_protocol::audit::Event::KeyDistributed {
                            group: group.clone(),
                            to: requester,
                        });
                        node.core.respond(to, Response::GroupKey { group, key: key.0 });
                    }
                    Err(e) => {
                        let why = format!("the custodian cannot read its key: {e}");
                        node.refuse_key(to, &group, why)
                    }
                }
            },
        );
    }

    /// Refuses a group key request: answered `Refused { Key }`; the same
    /// refusal repeated by a member (a flood of one request) is logged at
    /// most once a minute, with the count of the others in the next entry.
    fn refuse_key(&mut self, to: Answer, group: &str, why: String) {
        let reason = format!("for {group:?}: {why}");
        self.refuse_throttled(to.peer, ("group key", reason.clone()), reason);
        self.core.respond(
            to,
            Response::Refused {
                reason: dxmesh_protocol::wire::Refusal::Key(why),
            },
        );
    }

    pub(super) fn on_group_key_answer(&mut self, peer: PeerId, group: String, answer: Response) {
        match answer {
            Response::GroupKey { group: g, key } if g == group => {
                if self.core.config.role != Role::Provider {
                    tracing::error!(%group, %peer, "refusing to store a token group key: this node's role is {}", self.core.config.role);
                    return;
                }
                match self.keys.put(&group, &GroupMasterKey(key)) {
                    Ok(()) => {
                        tracing::info!(%group, custodian = %peer, "received the token group key");
                        if let Some(from) = PublicKey::from_peer_id(&peer) {
                            self.core.log(dxmesh_protocol::audit::Event::KeyReceived {
                                group: group.clone(),
                                from,
                            });
                        }
                        self.waiting_for_key.retain(|w| w.group != group);
                        self.schedule_feeds();
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
    }

    /// The group key for `terms`, or `None` after asking the custodian for it.
    pub(super) fn group_key(&mut self, terms: &Terms) -> Result<Option<GroupMasterKey>, NodeError> {
        let group = terms.token_group.clone();
        match self.core.config.key_custodians.get(&group).cloned() {
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
                if !self.core.connected.contains(&peer) {
                    return Err(PeerError::NotConnected {
                        role: "custodian",
                        label: format!("of group {group:?} ({peer})"),
                    }
                    .into());
                }
                // The agreement being published proves what the key is for.
                let transcript = self.core
                    .agreements
                    .by_agreement(&terms.id())
                    .map(|t| t.steps.clone())
                    .unwrap_or_default();
                self.core.send(
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
        targets: Vec<(Terms, u64)>,
        reply: Option<oneshot::Sender<AdminResponse>>,
    ) {
        let mut jobs = Vec::new();
        let mut errors = Vec::new();
        for (terms, epoch) in targets {
            let agreement = terms.id();
            if self.busy.contains(&(agreement, epoch)) {
                errors.push((
                    agreement,
                    epoch,
                    RequestError::Busy { what: "build" }.into(),
                ));
                continue;
            }
            let key_result = if terms.is_tokenised() {
                self.group_key(&terms)
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
                        .and_then(|p| {
                            read_manifest(&self.core.data_dir, &agreement, p)
                                .ok()
                                .flatten()
                        })
                        .map(|m| m.digest());
                    self.busy.insert((agreement, epoch));
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
        let data_dir = self.core.data_dir.clone();
        let seed = *self.core.identity.seed();
        let internal = self.internal_tx.clone();
        tokio::task::spawn_blocking(move || {
            let mut results: Vec<(AgreementId, u64, Result<Signed<Manifest>, NodeError>)> =
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
                })
                .map_err(NodeError::from);
                if let Ok(m) = &r
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

    /// Publishes due feeds and starts due pulls (on every tick). An
    /// automatic pull that did not complete is tried again after a delay
    /// that doubles with each try (at most an hour), so a provider that
    /// refuses it is not asked every tick.
    pub(super) fn schedule_feeds(&mut self) {
        let t = now();
        let me = self.core.identity.public();
        let mut to_publish = Vec::new();
        let mut to_pull = Vec::new();
        for th in self.core.agreements.threads() {
            if self.core.agreements.status(th, t) != dxmesh_protocol::agreement::Status::Active {
                continue;
            }
            let terms = &th.state.terms;
            let Some(epoch) = terms.cycle.epoch_at(t) else {
                continue;
            };
            let agreement = terms.id();
            if self.busy.contains(&(agreement, epoch)) {
                continue;
            }
            // A national index is queried, never published or pulled as a feed.
            if crate::ministry::answers_ministry_queries(terms) {
                continue;
            }
            if terms.provider == me && self.core.config.schedule.auto_publish {
                let published = feed_dir(&self.core.data_dir, &agreement, epoch)
                    .join(crate::base::layout::MANIFEST_FILE)
                    .exists();
                let imported =
                    crate::dataset::current_dir(&self.core.data_dir, &terms.dataset).is_ok();
                if !published
                    && imported
                    && !self
                        .waiting_for_key
                        .iter()
                        .any(|w| w.group == terms.token_group)
                {
                    to_publish.push((terms.clone(), epoch));
                }
            }
            if terms.consumer == me && self.core.config.schedule.auto_pull {
                let in_window = terms
                    .cycle
                    .window(epoch)
                    .is_some_and(|(s, e)| t >= s && t < e);
                let connected = self.core.connected.contains(&terms.provider.peer_id());
                if in_window
                    && connected
                    && !pulls::is_complete(&self.core.data_dir, &agreement, epoch)
                    && self.auto_pulls.due(&(agreement, epoch), Instant::now())
                {
                    to_pull.push((agreement, epoch));
                }
            }
        }
        if !to_publish.is_empty() {
            self.start_publish(to_publish, None);
        }
        for (agreement, epoch) in to_pull {
            if let Err(e) = self.start_pull(agreement, epoch, None, None) {
                tracing::debug!(error = %e, "scheduled pull not started");
            }
        }
    }

    /// Background publishing ended: log each feed, answer the operator.
    pub(super) fn on_published(
        &mut self,
        results: Vec<(AgreementId, u64, Result<Signed<Manifest>, NodeError>)>,
        reply: Option<oneshot::Sender<AdminResponse>>,
    ) {
        let mut feeds_out = Vec::new();
        let mut errors = Vec::new();
        for (agreement, epoch, r) in results {
            self.busy.remove(&(agreement, epoch));
            match r {
                Ok(signed) => {
                    if let Ok(m) = codec::decode::<Manifest>(signed.body()) {
                        self.core.log(dxmesh_protocol::audit::Event::FeedPublished {
                            agreement,
                            epoch,
                            manifest: signed.digest(),
                            records: m.records,
                        });
                        feeds_out.push(FeedInfo {
                            agreement: dxmesh_protocol::hex(&agreement),
                            dataset: m.dataset.clone(),
                            epoch,
                            records: m.records,
                            chunks: m.chunks(),
                            root: dxmesh_protocol::hex(&m.root),
                            manifest: dxmesh_protocol::hex(&signed.digest()),
                        });
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
