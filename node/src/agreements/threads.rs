//! The node's side of sharing agreements: every negotiation thread it is a
//! party to, replayed from its signed transcript, and the rules for keeping
//! both parties' transcripts identical.
//!
//! **The provider sequences every thread.** A provider appends its own steps
//! (and answers consumers' steps) in its store first, then tells the other
//! side. A consumer keeps its own signed step in an *outbox* until the
//! provider confirms it; only then does it join the consumer's transcript.
//! A consumer's transcript is therefore always a prefix of the provider's,
//! and reconnecting parties converge by the consumer adopting the
//! provider's transcript (`AgreementSync`). Nothing here does I/O other than
//! the state store; the daemon moves the messages.

use crate::base::store::{Store, StoreError};
use dxmesh_protocol::agreement::{
    Action, AgreementId, Negotiation, Status, Step, StepError, reconcile, sign_step,
};
use dxmesh_protocol::identity::{Identity, PublicKey};
use dxmesh_protocol::merkle::Hash;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::time::Timestamp;
use dxmesh_protocol::wire::{Response, ThreadHead};
use std::collections::BTreeMap;

/// One negotiation thread.
#[derive(Debug, Clone)]
pub struct Thread {
    /// The signed transcript.
    pub steps: Vec<Signed<Step>>,
    /// Its replayed state.
    pub state: Negotiation,
}

/// Why a local agreement action failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgreementError {
    /// No thread matches.
    #[error("no agreement matches {0:?}")]
    NotFound(String),
    /// Several threads match an id prefix.
    #[error("{0:?} matches several agreements; give more of the id")]
    Ambiguous(String),
    /// This node is not a party.
    #[error("this node is neither the provider nor the consumer of these terms")]
    NotAParty,
    /// A step of ours is still waiting for the provider.
    #[error("an earlier step on this agreement is still waiting for the provider's answer")]
    StepPending,
    /// The state machine refused the step.
    #[error("{0}")]
    Refused(#[from] StepError),
    /// State could not be stored.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Encoding failed.
    #[error("cannot encode the step: {0}")]
    Encode(String),
    /// A step of ours that does not decode (the outbox is damaged).
    #[error("the step does not decode")]
    Undecodable,
    /// The provider refused our step, with its reason.
    #[error("{0}")]
    RefusedByProvider(String),
    /// The provider answered with something that is not an answer to a step.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

/// What happened to a local action.
#[derive(Debug)]
pub enum Acted {
    /// We are the provider: the step is in our transcript; tell the consumer.
    Committed {
        /// The thread.
        thread: Hash,
        /// The step.
        step: Signed<Step>,
        /// Who to notify.
        notify: PublicKey,
    },
    /// We are the consumer: the step is in the outbox; send it to the provider.
    Pending {
        /// The step.
        step: Signed<Step>,
        /// The provider.
        provider: PublicKey,
    },
}

/// All threads this node is a party to, and its unconfirmed steps.
#[derive(Debug, Default)]
pub struct Agreements {
    threads: BTreeMap<Hash, Thread>,
    outbox: Vec<Signed<Step>>,
}

/// Digest of the thread a step belongs to.
pub fn thread_of(step: &Signed<Step>) -> Option<Hash> {
    match dxmesh_protocol::codec::decode::<Step>(step.body()) {
        Ok(s) => Some(s.thread.unwrap_or_else(|| step.digest())),
        Err(_) => None,
    }
}

impl Agreements {
    /// Loads and replays every stored transcript; drops outbox steps already confirmed.
    pub fn load(store: &Store) -> Result<Agreements, StoreError> {
        let mut a = Agreements::default();
        for steps in store.transcripts()? {
            match Negotiation::replay(&steps) {
                Ok(state) => {
                    a.threads.insert(state.thread, Thread { steps, state });
                }
                Err(e) => {
                    tracing::error!(error = %e, "a stored agreement transcript does not replay; ignoring it")
                }
            }
        }
        for step in store.outbox()? {
            let digest = step.digest();
            let confirmed = a
                .threads
                .values()
                .any(|t| t.state.step_digests.contains(&digest));
            if confirmed {
                store.outbox_remove(&digest)?;
            } else {
                a.outbox.push(step);
            }
        }
        Ok(a)
    }

    /// Every thread.
    pub fn threads(&self) -> impl Iterator<Item = &Thread> {
        self.threads.values()
    }

    /// Our unconfirmed steps.
    pub fn outbox(&self) -> &[Signed<Step>] {
        &self.outbox
    }

    /// The thread with this digest.
    pub fn get(&self, thread: &Hash) -> Option<&Thread> {
        self.threads.get(thread)
    }

    /// Finds a thread by a hex prefix of its thread id or of its (current) agreement id.
    pub fn find(&self, id: &str) -> Result<&Thread, AgreementError> {
        let id = id.trim().to_ascii_lowercase();
        if id.len() < 4 {
            return Err(AgreementError::NotFound(id));
        }
        let matches: Vec<&Thread> = self
            .threads
            .values()
            .filter(|t| {
                dxmesh_protocol::hex(&t.state.thread).starts_with(&id)
                    || dxmesh_protocol::hex(&t.state.terms.id()).starts_with(&id)
            })
            .collect();
        match matches.as_slice() {
            [] => Err(AgreementError::NotFound(id)),
            [one] => Ok(one),
            _ => Err(AgreementError::Ambiguous(id)),
        }
    }

    /// The accepted thread whose agreement id is `id`.
    pub fn by_agreement(&self, id: &AgreementId) -> Option<&Thread> {
        self.threads
            .values()
            .find(|t| t.state.agreement_id().is_some() && t.state.terms.id() == *id)
    }

    /// Whether a newer agreement replacing `t` is in force at `now`.
    pub fn superseded(&self, t: &Thread, now: Timestamp) -> bool {
        self.threads.values().any(|other| {
            t.state.terms.may_be_superseded_by(&other.state.terms)
                && matches!(
                    other.state.status(now, false),
                    Status::Active | Status::Suspended
                )
        })
    }

    /// Status of `t` at `now`.
    pub fn status(&self, t: &Thread, now: Timestamp) -> Status {
        t.state.status(now, self.superseded(t, now))
    }

    fn persist(
        &mut self,
        store: &Store,
        steps: Vec<Signed<Step>>,
        state: Negotiation,
    ) -> Result<(), StoreError> {
        store.put_transcript(&state.thread, &steps)?;
        self.threads.insert(state.thread, Thread { steps, state });
        Ok(())
    }

    /// Takes a step of our own. `thread` is `None` for a proposal.
    pub fn act(
        &mut self,
        store: &Store,
        me: &Identity,
        thread: Option<Hash>,
        action: Action,
        now: Timestamp,
    ) -> Result<Acted, AgreementError> {
        let my_key = me.public();
        let current = match thread {
            None => None,
            Some(h) => Some(
                self.threads
                    .get(&h)
                    .ok_or_else(|| AgreementError::NotFound(dxmesh_protocol::hex(&h)))?,
            ),
        };
        if let Some(t) = current
            && self
                .outbox
                .iter()
                .any(|s| thread_of(s) == Some(t.state.thread))
        {
            return Err(AgreementError::StepPending);
        }
        let step = sign_step(me, current.map(|t| &t.state), now, action)
            .map_err(|e| AgreementError::Encode(e.to_string()))?;
        // Check the step against the state machine (and get the parties).
        let (state, steps) = match current {
            None => {
                let state = Negotiation::start(&step)?;
                (state, vec![step.clone()])
            }
            Some(t) => {
                let mut state = t.state.clone();
                state.apply(&step)?;
                let mut steps = t.steps.clone();
                steps.push(step.clone());
                (state, steps)
            }
        };
        let terms = &state.terms;
        if my_key == terms.provider {
            let notify = terms.consumer;
            let thread = state.thread;
            self.persist(store, steps, state)?;
            Ok(Acted::Committed {
                thread,
                step,
                notify,
            })
        } else if my_key == terms.consumer {
            let provider = terms.provider;
            store.outbox_put(&step)?;
            self.outbox.push(step.clone());
            Ok(Acted::Pending { step, provider })
        } else {
            Err(AgreementError::NotAParty)
        }
    }

    /// A step arrived from peer `from`. Returns the response and whether we
    /// (as consumer) are behind and should ask the provider for a sync.
    pub fn on_step(
        &mut self,
        store: &Store,
        me: &PublicKey,
        from: &PublicKey,
        step: Signed<Step>,
    ) -> (Response, bool) {
        let refuse = |reason: String, transcript: Vec<Signed<Step>>| Response::StepRefused {
            reason,
            transcript,
        };
        if step.signer() != from {
            return (
                refuse(
                    "the step is not signed by the node that sent it".into(),
                    vec![],
                ),
                false,
            );
        }
        let Some(thread) = thread_of(&step) else {
            return (refuse("the step does not decode".into(), vec![]), false);
        };
        let digest = step.digest();
        match self.threads.get(&thread) {
            None => {
                // Only a proposal may open a thread.
                let state = match Negotiation::start(&step) {
                    Ok(s) => s,
                    Err(e) => {
                        let behind = matches!(e, StepError::OutOfOrder { .. });
                        return (
                            refuse(format!("unknown agreement thread ({e})"), vec![]),
                            behind,
                        );
                    }
                };
                if state.terms.provider != *me && state.terms.consumer != *me {
                    return (
                        refuse(
                            "this node is not a party to the proposed terms".into(),
                            vec![],
                        ),
                        false,
                    );
                }
                if let Err(e) = self.persist(store, vec![step], state) {
                    tracing::error!(error = %e, "cannot persist an agreement proposal");
                    return (
                        refuse(
                            "the provider could not store the step; try again".into(),
                            vec![],
                        ),
                        false,
                    );
                }
                crate::base::failpoint::hit("agreement-step-persisted");
                (Response::StepAccepted { len: 1 }, false)
            }
            Some(t) => {
                if t.state.step_digests.contains(&digest) {
                    return (Response::StepAccepted { len: t.state.len }, false);
                }
                let mut state = t.state.clone();
                match state.apply(&step) {
                    Ok(()) => {
                        let mut steps = t.steps.clone();
                        steps.push(step);
                        if let Err(e) = self.persist(store, steps, state) {
                            tracing::error!(error = %e, "cannot persist an agreement step");
                            return (
                                refuse("could not store the step; try again".into(), vec![]),
                                false,
                            );
                        }
                        self.drop_confirmed_outbox(store);
                        crate::base::failpoint::hit("agreement-step-persisted");
                        let len = self.threads.get(&thread).map(|t| t.state.len).unwrap_or(0);
                        (Response::StepAccepted { len }, false)
                    }
                    Err(e) => {
                        let behind = t.state.terms.consumer == *me
                            && matches!(e, StepError::OutOfOrder { .. });
                        (refuse(e.to_string(), t.steps.clone()), behind)
                    }
                }
            }
        }
    }

    /// Heads of the threads where we are the consumer and `provider` the provider.
    pub fn heads_as_consumer(&self, me: &PublicKey, provider: &PublicKey) -> Vec<ThreadHead> {
        self.threads
            .values()
            .filter(|t| t.state.terms.consumer == *me && t.state.terms.provider == *provider)
            .map(|t| ThreadHead {
                thread: t.state.thread,
                len: t.state.len,
            })
            .collect()
    }

    /// As provider: the transcripts consumer `from` is missing.
    pub fn missing_for(
        &self,
        me: &PublicKey,
        from: &PublicKey,
        heads: &[ThreadHead],
    ) -> Vec<Vec<Signed<Step>>> {
        self.threads
            .values()
            .filter(|t| t.state.terms.provider == *me && t.state.terms.consumer == *from)
            .filter(|t| {
                heads
                    .iter()
                    .find(|h| h.thread == t.state.thread)
                    .is_none_or(|h| h.len < t.state.len)
            })
            .map(|t| t.steps.clone())
            .collect()
    }

    /// As consumer: adopt the provider's transcripts. Returns the outbox
    /// steps that still apply and should be (re)sent, and messages for the
    /// operator about steps that can no longer apply.
    pub fn adopt(
        &mut self,
        store: &Store,
        me: &PublicKey,
        provider: &PublicKey,
        transcripts: Vec<Vec<Signed<Step>>>,
    ) -> (Vec<Signed<Step>>, Vec<String>) {
        let mut notes = Vec::new();
        for theirs in transcripts {
            let Some(first) = theirs.first() else {
                continue;
            };
            let thread = first.digest();
            let local: Vec<Signed<Step>> = self
                .threads
                .get(&thread)
                .map(|t| t.steps.clone())
                .unwrap_or_default();
            match reconcile(&local, &theirs) {
                Ok(state) => {
                    if state.terms.provider != *provider || state.terms.consumer != *me {
                        notes.push(format!(
                            "ignored a transcript from {provider}: it is not between this node (consumer) and that provider"
                        ));
                        continue;
                    }
                    if let Err(e) = self.persist(store, theirs, state) {
                        notes.push(format!("cannot store an adopted transcript: {e}"));
                    }
                }
                Err(e) => {
                    tracing::error!(%provider, error = %e, thread = %dxmesh_protocol::hex(&thread), "provider's transcript does not extend ours");
                    notes.push(format!("agreement {}: {e}", dxmesh_protocol::hex(&thread)));
                }
            }
        }
        self.drop_confirmed_outbox(store);
        // Steps still waiting: resend those that still follow the transcript.
        let mut resend = Vec::new();
        let mut stale = Vec::new();
        for step in &self.outbox {
            let Some(thread) = thread_of(step) else {
                continue;
            };
            let still_applies = match self.threads.get(&thread) {
                None => Negotiation::start(step).is_ok_and(|s| s.terms.provider == *provider),
                Some(t) => t.state.terms.provider == *provider && t.state.check(step).is_ok(),
            };
            let for_this_provider = match self.threads.get(&thread) {
                None => Negotiation::start(step).is_ok_and(|s| s.terms.provider == *provider),
                Some(t) => t.state.terms.provider == *provider,
            };
            if !for_this_provider {
                continue;
            }
            if still_applies {
                resend.push(step.clone());
            } else {
                stale.push(step.digest());
            }
        }
        for d in stale {
            notes.push(format!(
                "a queued step was dropped: the provider's transcript moved on before it arrived ({})",
                dxmesh_protocol::hex(&d)
            ));
            let _ = store.outbox_remove(&d);
            self.outbox.retain(|s| s.digest() != d);
        }
        (resend, notes)
    }

    /// The provider answered one of our outbox steps.
    pub fn on_step_answer(
        &mut self,
        store: &Store,
        me: &PublicKey,
        step: &Signed<Step>,
        answer: Response,
    ) -> Result<(), AgreementError> {
        let digest = step.digest();
        let result = match answer {
            Response::StepAccepted { .. } => {
                crate::base::failpoint::hit("agreement-answer-received");
                let Some(thread) = thread_of(step) else {
                    return Err(AgreementError::Undecodable);
                };
                let (steps, state) = match self.threads.get(&thread) {
                    None => match Negotiation::start(step) {
                        Ok(s) => (vec![step.clone()], s),
                        Err(e) => return Err(e.into()),
                    },
                    Some(t) if t.state.step_digests.contains(&digest) => {
                        (t.steps.clone(), t.state.clone())
                    }
                    Some(t) => {
                        let mut s = t.state.clone();
                        s.apply(step)?;
                        let mut steps = t.steps.clone();
                        steps.push(step.clone());
                        (steps, s)
                    }
                };
                self.persist(store, steps, state)
                    .map_err(AgreementError::from)
            }
            Response::StepRefused { reason, transcript } => {
                if !transcript.is_empty() {
                    let provider = transcript
                        .first()
                        .and_then(|f| Negotiation::start(f).ok())
                        .map(|s| s.terms.provider);
                    if let Some(p) = provider {
                        let _ = self.adopt(store, me, &p, vec![transcript]);
                    }
                }
                Err(AgreementError::RefusedByProvider(reason))
            }
            other => Err(AgreementError::Unexpected(format!("{other:?}"))),
        };
        let _ = store.outbox_remove(&digest);
        self.outbox.retain(|s| s.digest() != digest);
        result
    }

    fn drop_confirmed_outbox(&mut self, store: &Store) {
        let confirmed: Vec<Hash> = self
            .outbox
            .iter()
            .map(|s| s.digest())
            .filter(|d| {
                self.threads
                    .values()
                    .any(|t| t.state.step_digests.contains(d))
            })
            .collect();
        for d in confirmed {
            let _ = store.outbox_remove(&d);
            self.outbox.retain(|s| s.digest() != d);
        }
    }
}
