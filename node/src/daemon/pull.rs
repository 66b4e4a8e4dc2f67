//! The pull desk, at the consumer: pulls by command, by the comparator's cycle and on
//! schedule inside the cycle window, verified chunk by chunk
//! ([`crate::pull::download`]); and retention, which erases pulled
//! feeds once their agreement's retention ends.

use super::core::{Core, counter_key};
use super::error::{NodeError, PeerError, RequestError};
use super::limits::Backoff;
use super::pending::{Event, Held, Pending, PullJob, PullReply, answer_error, parse_token};
use super::trust::Trust;
use crate::admin::AdminResponse;
use crate::base::clock::now;
use crate::pull::pulls::{self, PullError, PullSummary};
use dxmesh_protocol::agreement::AgreementId;
use dxmesh_protocol::codec;
use dxmesh_protocol::feed::Manifest;
use dxmesh_protocol::token::IdToken;
use dxmesh_protocol::wire::{Request, Response};
use libp2p::PeerId;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The pull desk: the feeds being pulled now, the automatic pulls tried
/// (each retried later), the erasures logged, and the control that opens
/// bulk streams.
pub(super) struct Pulling {
    /// Feeds being pulled now, by (agreement, epoch).
    pulling: HashSet<(AgreementId, u64)>,
    /// Expired pulled feeds whose erasure this run has logged (a failing
    /// erasure is retried every tick but logged once).
    erasure_logged: HashSet<(AgreementId, u64)>,
    /// Automatic pulls tried, by agreement and epoch (each retry later).
    auto_pulls: Backoff<(AgreementId, u64)>,
    /// Opens bulk streams.
    stream_control: libp2p_stream::Control,
}

impl Pulling {
    /// The desk opening streams with `stream_control`; an automatic pull
    /// not completed is retried after `retry`, doubled each time (at most
    /// an hour).
    pub(super) fn new(stream_control: libp2p_stream::Control, retry: Duration) -> Pulling {
        Pulling {
            pulling: HashSet::new(),
            erasure_logged: HashSet::new(),
            auto_pulls: Backoff::new(retry, Duration::from_secs(3600)),
            stream_control,
        }
    }

    /// A pull whose request got no answer is no longer in flight.
    pub(super) fn failed(&mut self, job: &PullJob) {
        self.pulling.remove(&job.key());
    }

    /// The feeds due to be pulled now (on every tick, if the schedule
    /// pulls): each active agreement this node consumes whose epoch's
    /// window is open, whose provider is connected, not complete nor being
    /// pulled, and whose last automatic try is long enough ago. Retries of
    /// pulls not tried for two hours (past epochs) are forgotten.
    pub(super) fn due(&mut self, core: &Core) -> Vec<(AgreementId, u64)> {
        if let Some(cutoff) = Instant::now().checked_sub(Duration::from_secs(7200)) {
            self.auto_pulls.forget_before(cutoff);
        }
        if !core.config.schedule.auto_pull {
            return Vec::new();
        }
        let mut due = Vec::new();
        for (terms, epoch) in core.current_feeds(false) {
            let agreement = terms.id();
            let in_window = in_window(core, &agreement, epoch);
            let connected = core.connected.contains(&terms.provider.peer_id());
            if in_window
                && connected
                && !self.pulling.contains(&(agreement, epoch))
                && !pulls::is_complete(&core.data_dir, &agreement, epoch)
                && self.auto_pulls.due(&(agreement, epoch), Instant::now())
            {
                due.push((agreement, epoch));
            }
        }
        due
    }

    /// `dxmesh pull`: pull (or resume) a feed, or report it complete.
    pub(super) fn admin_pull(
        &mut self,
        core: &mut Core,
        trust: &Trust,
        agreement: String,
        epoch: Option<u64>,
        range: Option<(String, String)>,
        reply: oneshot::Sender<AdminResponse>,
    ) {
        let t = now();
        let th = match core.agreements.find(&agreement) {
            Ok(th) => th.clone(),
            Err(e) => return answer_error(reply, e),
        };
        let Some(e) = epoch.or_else(|| th.state.terms.cycle.epoch_at(t)) else {
            return answer_error(reply, RequestError::CycleNotStarted);
        };
        let range = match range
            .map(|(a, b)| Ok::<_, RequestError>((parse_token(&a)?, parse_token(&b)?)))
            .transpose()
        {
            Ok(r) => r,
            Err(e) => return answer_error(reply, e),
        };
        let id = th.state.terms.id();
        self.start_pull(core, trust, (id, e), range, Some(PullReply::Admin(reply)));
    }

    /// The pulled feeds of this node's agreements as consumer that must be
    /// gone on `day` (see [`crate::pull::retention::expired`]).
    pub(super) fn expired_pulls(
        core: &Core,
        day: dxmesh_protocol::date::Date,
    ) -> Vec<crate::pull::retention::Expired> {
        core.expired_feeds(false, day)
    }

    /// Erases pulled feeds whose agreement's retention has ended (on every
    /// tick): the audit entry first, then the files (see `retention`); and
    /// the token files of the commitments of an epoch whose feeds are all
    /// erased.
    pub(super) fn enforce_retention(&mut self, core: &mut Core) {
        let root = crate::base::layout::PULLS;
        if let Err(e) = crate::pull::retention::finish_interrupted(&core.data_dir, root) {
            tracing::error!(error = %e, "cannot finish erasing an expired feed");
        }
        let expired = Pulling::expired_pulls(core, now().date());
        // A pull still writing an epoch finishes first; the next tick erases it.
        for gone in expired
            .into_iter()
            .filter(|g| !self.pulling.contains(&(g.agreement, g.epoch)))
        {
            if core.erase_expired(root, &gone, &mut self.erasure_logged) {
                erase_commitment_tokens(core, gone.epoch);
            }
        }
    }

    /// Starts pulling the feed of `agreement` for `epoch` (the tokens in
    /// `range` only, if given); `reply` is told when it ends, or at once
    /// why it cannot start (without one, the schedule's, that is logged).
    pub(super) fn start_pull(
        &mut self,
        core: &mut Core,
        trust: &Trust,
        (agreement, epoch): (AgreementId, u64),
        range: Option<(IdToken, IdToken)>,
        reply: Option<PullReply>,
    ) {
        // A complete feed is checked against the provider's manifest now:
        // if it republished the epoch, the new feed is pulled instead.
        let held = range
            .is_none()
            .then(|| held_feed(core, &agreement, epoch))
            .flatten();
        // Outside the epoch's window the provider would refuse to say.
        if let Some(held) = held
            && !in_window(core, &agreement, epoch)
        {
            if let Some(reply) = reply {
                reply.held(agreement, epoch, &held);
            }
            return;
        }
        let (provider, pull_id, fields) = match self.may_pull(core, trust, agreement, epoch) {
            Ok(ready) => ready,
            Err(e) => {
                match (reply, held) {
                    (Some(reply), Some(held)) => reply.held(agreement, epoch, &held),
                    (Some(reply), None) => reply.fail(e),
                    (None, _) => tracing::debug!(error = %e, "scheduled pull not started"),
                }
                return;
            }
        };
        self.pulling.insert((agreement, epoch));
        core.send(
            provider,
            Request::PullOpen {
                agreement,
                epoch,
                fields,
                pull_id,
            },
            Pending::PullOpen(PullJob {
                agreement,
                epoch,
                pull_id,
                range,
                reply,
                held,
            }),
        );
    }

    /// Whether the feed may be pulled now: the provider to ask, this
    /// pull's id and the fields the agreement names.
    fn may_pull(
        &self,
        core: &Core,
        trust: &Trust,
        agreement: AgreementId,
        epoch: u64,
    ) -> Result<(PeerId, [u8; 16], Vec<String>), NodeError> {
        let Some(th) = core.agreements.by_agreement(&agreement) else {
            return Err(RequestError::NotAccepted.into());
        };
        let terms = th.state.terms.clone();
        if terms.consumer != core.identity.public() {
            return Err(RequestError::NotConsumer.into());
        }
        if let Some(until) = crate::pull::retention::kept_until(&terms, epoch)
            && now().date() > until
        {
            return Err(RequestError::PastRetention {
                epoch,
                until: until.to_string(),
                retention_days: terms.retention_days,
            }
            .into());
        }
        let provider = terms.provider.peer_id();
        if !core.connected.contains(&provider) {
            return Err(PeerError::NotConnected {
                role: "provider",
                label: trust.label(&terms.provider),
            }
            .into());
        }
        if self.pulling.contains(&(agreement, epoch)) {
            return Err(RequestError::Busy { what: "pull" }.into());
        }
        let pull_id = pulls::pull_id(&core.data_dir, &agreement, epoch)?;
        let fields = terms.fields.iter().map(|f| f.name.clone()).collect();
        Ok((provider, pull_id, fields))
    }

    pub(super) fn on_pull_answer(
        &mut self,
        core: &mut Core,
        trust: &Trust,
        peer: PeerId,
        job: PullJob,
        answer: Response,
    ) {
        let fail = |desk: &mut Pulling, job: PullJob, error: NodeError| {
            desk.pulling.remove(&(job.agreement, job.epoch));
            tracing::warn!(%peer, %error, "pull not done");
            job.fail(error);
        };
        let terms = match core.agreements.by_agreement(&job.agreement) {
            Some(t) => t.state.terms.clone(),
            None => return fail(self, job, RequestError::UnknownAgreement.into()),
        };
        match answer {
            Response::PullGranted { manifest } => {
                let m = match pulls::verify_manifest(&manifest, &terms, job.epoch) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::error!(error = %e, "SECURITY: a provider sent a manifest that does not verify");
                        return fail(self, job, e.into());
                    }
                };
                if let Some(held) = job.held {
                    self.pulling.remove(&job.key());
                    if manifest.digest() == held.manifest {
                        if let Some(reply) = job.reply {
                            reply.held(job.agreement, job.epoch, &held);
                        }
                    } else {
                        self.pull_republished(core, trust, job, manifest.digest());
                    }
                    return;
                }
                if let Err(e) = pulls::store_manifest(&core.data_dir, &manifest, &m) {
                    return fail(self, job, e.into());
                }
                // Counted as the provider counts it (one per pull id), for
                // the quota this node's operator sees.
                let mut granted = core.pulls_granted(&job.agreement, job.epoch);
                if !granted.contains(&job.pull_id) {
                    granted.push(job.pull_id);
                    let key = counter_key("pull", &job.agreement, job.epoch);
                    if let Err(e) = core.store.set_counter(&key, &granted) {
                        tracing::warn!(error = %e, "cannot count the pull granted");
                    }
                }
                let range = job.range.map(|(a, b)| m.chunks_for_range(&a, &b));
                let control = self.stream_control.clone();
                let data_dir = core.data_dir.clone();
                let internal = core.events.clone();
                let (agreement, epoch, pull_id, reply) =
                    (job.agreement, job.epoch, job.pull_id, job.reply);
                tokio::spawn(async move {
                    let result = crate::pull::download::download(
                        control, peer, &data_dir, &m, pull_id, range,
                    )
                    .await;
                    let _ = internal.send(Event::PullDone {
                        agreement,
                        epoch,
                        result,
                        reply,
                    });
                });
            }
            Response::Denied { refusal } => {
                let refused = PeerError::Refused {
                    role: "provider",
                    refusal,
                };
                fail(self, job, refused.into())
            }
            Response::Refused { reason } => {
                let refused = PeerError::RefusedRequest {
                    role: "provider",
                    reason: format!("{reason:?}"),
                };
                fail(self, job, refused.into())
            }
            other => fail(
                self,
                job,
                PeerError::Unexpected(format!("{other:?}")).into(),
            ),
        }
    }

    /// The provider republished an epoch whose feed this node holds: the
    /// feed held is erased (its manifest kept as evidence, the supersession
    /// logged) and the new one pulled, as a new pull of the epoch.
    fn pull_republished(&mut self, core: &mut Core, trust: &Trust, job: PullJob, by: [u8; 32]) {
        let Some(held) = job.held else {
            return;
        };
        let (agreement, epoch) = (job.agreement, job.epoch);
        // The new feed needs a new pull: with none left of `max_pulls`, the
        // feed held stays rather than be erased for one that cannot come.
        let max_pulls = core
            .agreements
            .by_agreement(&agreement)
            .map_or(0, |t| t.state.terms.cycle.max_pulls as usize);
        if core.pulls_granted(&agreement, epoch).len() >= max_pulls {
            tracing::warn!(
                agreement = %dxmesh_protocol::hex(&agreement),
                epoch,
                max_pulls,
                "the provider republished the epoch, but every pull of it is used: keeping the feed held"
            );
            if let Some(reply) = job.reply {
                reply.held(agreement, epoch, &held);
            }
            return;
        }
        let dir = pulls::pull_dir(&core.data_dir, &agreement, epoch);
        let erased =
            crate::pull::retention::keep_superseded(&core.data_dir, &agreement, epoch, &dir)
                .and_then(|()| crate::pull::retention::erase(&dir));
        if let Err(e) = erased {
            tracing::error!(error = %e, dir = %dir.display(), "cannot erase the superseded feed; using it");
            if let Some(reply) = job.reply {
                reply.held(agreement, epoch, &held);
            }
            return;
        }
        tracing::warn!(
            agreement = %dxmesh_protocol::hex(&agreement),
            epoch,
            superseded = %dxmesh_protocol::hex(&held.manifest),
            by = %dxmesh_protocol::hex(&by),
            "the provider republished the epoch: pulling the new feed"
        );
        core.log(dxmesh_protocol::audit::Event::FeedSuperseded {
            agreement,
            epoch,
            superseded: held.manifest,
            by,
        });
        self.start_pull(core, trust, (agreement, epoch), None, job.reply);
    }

    /// A download ended: log the completed pull, answer whoever waits.
    /// Returns whether a completed pull was logged (for the witnesses).
    pub(super) fn on_pull_done(
        &mut self,
        core: &mut Core,
        agreement: AgreementId,
        epoch: u64,
        result: Result<PullSummary, PullError>,
        reply: Option<PullReply>,
    ) -> bool {
        self.pulling.remove(&(agreement, epoch));
        let mut logged = false;
        if let Ok(summary) = &result {
            core.metrics.pulled(summary.bytes, summary.received);
        }
        if result.is_ok()
            && let Some(th) = core.agreements.by_agreement(&agreement)
        {
            let provider = th.state.terms.provider;
            let manifest = pulls::stored_manifest(&core.data_dir, &agreement, epoch);
            let pull_id = pulls::pull_id(&core.data_dir, &agreement, epoch).unwrap_or_default();
            if let Some(m) = manifest {
                let chunks = codec::decode::<Manifest>(m.body())
                    .map(|x| x.chunks())
                    .unwrap_or(0);
                core.log(dxmesh_protocol::audit::Event::PullCompleted {
                    agreement,
                    epoch,
                    provider,
                    pull_id,
                    manifest: m.digest(),
                    chunks,
                });
                logged = true;
            }
        }
        match result {
            Ok(summary) => {
                tracing::info!(
                    agreement = %dxmesh_protocol::hex(&agreement),
                    epoch,
                    chunks = summary.chunks,
                    received = summary.received,
                    bytes = summary.bytes,
                    records = summary.records,
                    seconds = summary.seconds,
                    "pull completed"
                );
                match reply {
                    Some(PullReply::Admin(reply)) => {
                        let _ = reply.send(AdminResponse::Pulled {
                            summary,
                            agreement: dxmesh_protocol::hex(&agreement),
                            epoch,
                        });
                    }
                    Some(PullReply::Cycle(reply)) => {
                        let _ = reply.send(Ok(()));
                    }
                    None => {}
                }
            }
            Err(e) => {
                tracing::warn!(agreement = %dxmesh_protocol::hex(&agreement), epoch, error = %e, "pull failed");
                if let Some(reply) = reply {
                    reply.fail(e);
                }
            }
        }
        logged
    }
}

/// The complete feed held for `agreement` and `epoch`, if any.
fn held_feed(core: &Core, agreement: &AgreementId, epoch: u64) -> Option<Held> {
    if !pulls::is_complete(&core.data_dir, agreement, epoch) {
        return None;
    }
    let signed = pulls::stored_manifest(&core.data_dir, agreement, epoch)?;
    let m = codec::decode::<Manifest>(signed.body()).ok()?;
    Some(Held {
        manifest: signed.digest(),
        records: m.records,
        chunks: m.chunks(),
    })
}

/// Whether `epoch`'s pull window of `agreement` is open now.
fn in_window(core: &Core, agreement: &AgreementId, epoch: u64) -> bool {
    let t = now();
    core.agreements
        .by_agreement(agreement)
        .and_then(|th| th.state.terms.cycle.window(epoch))
        .is_some_and(|(s, e)| t >= s && t < e)
}

/// Once no pulled feed of `epoch` is held any more, the token files of the
/// epoch's commitments go too (they were computed from those feeds); the
/// signed commitments stay as evidence. Logged once, with the count.
fn erase_commitment_tokens(core: &mut Core, epoch: u64) {
    let held = std::fs::read_dir(core.data_dir.join(crate::base::layout::PULLS))
        .into_iter()
        .flatten()
        .flatten()
        .any(|a| a.path().join(epoch.to_string()).exists());
    if held {
        return;
    }
    match crate::compare::commit::erase_tokens(&core.data_dir, epoch) {
        Ok(0) => {}
        Ok(files) => {
            tracing::info!(
                epoch,
                files,
                "retention ended: the epoch's commitment tokens erased"
            );
            core.log(dxmesh_protocol::audit::Event::TokensErased { epoch, files });
        }
        Err(e) => tracing::error!(epoch, error = %e, "cannot erase the epoch's commitment tokens"),
    }
}
