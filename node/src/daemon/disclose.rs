//! The daemon's disclosures, both sides. At the provider: a request is
//! checked against the agreement by the protocol's `check_disclosure`, its
//! records counted against the quota before anything is disclosed, then
//! resolved on a blocking thread ([`crate::publish::disclose`]) and
//! answered signed. At the consumer: `dxmesh disclose` by hand; the
//! comparator's cycle asks through `compare`.

use super::node::{DiscloseAsk, Event, Node, Pending, counter_key, parse_token};
use crate::admin::AdminResponse;
use crate::base::clock::now;
use crate::publish::store::feed_dir;
use crate::pull::pulls;
use dxmesh_protocol::agreement::{DisclosureCheck, Refusal, Terms};
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::token::IdToken;
use dxmesh_protocol::wire::{Request, Response};
use libp2p::PeerId;
use tokio::sync::oneshot;

impl Node {
    /// `dxmesh disclose`: ask the provider to disclose records for tokens.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn admin_disclose(
        &mut self,
        agreement: String,
        epoch: Option<u64>,
        result_kind: String,
        fields: Vec<String>,
        tokens: Vec<String>,
        first: Option<u64>,
        out: Option<String>,
        reply: oneshot::Sender<AdminResponse>,
    ) {
        let t = now();
        let th = match self.agreements.find(&agreement) {
            Ok(th) => th.clone(),
            Err(e) => {
                let _ = reply.send(AdminResponse::Error {
                    message: e.to_string(),
                });
                return;
            }
        };
        let terms = th.state.terms.clone();
        let Some(e) = epoch.or_else(|| terms.cycle.epoch_at(t)) else {
            let _ = reply.send(AdminResponse::Error {
                message: "the agreement's cycle has not started".into(),
            });
            return;
        };
        let mut list = Vec::new();
        for h in &tokens {
            match parse_token(h) {
                Ok(tk) => list.push(tk),
                Err(message) => {
                    let _ = reply.send(AdminResponse::Error { message });
                    return;
                }
            }
        }
        if let Some(n) = first {
            match first_tokens(&self.data_dir, &terms, e, n) {
                Ok(mut v) => list.append(&mut v),
                Err(message) => {
                    let _ = reply.send(AdminResponse::Error { message });
                    return;
                }
            }
        }
        let provider = terms.provider.peer_id();
        if !self.connected.contains(&provider) {
            let _ = reply.send(AdminResponse::Error {
                message: format!(
                    "the provider {} is not connected",
                    self.label(&terms.provider)
                ),
            });
            return;
        }
        self.send(
            provider,
            Request::Disclose {
                agreement: terms.id(),
                epoch: e,
                result_kind,
                fields,
                tokens: list,
            },
            Pending::Disclose {
                reply: Some(reply),
                out,
            },
        );
    }

    pub(super) fn on_disclose(
        &mut self,
        peer: PeerId,
        ask: DiscloseAsk,
        channel: libp2p::request_response::ResponseChannel<Response>,
    ) {
        if let Some((channel, response)) = self.check_and_start_disclosure(peer, ask, channel) {
            let _ = self
                .swarm
                .behaviour_mut()
                .control
                .send_response(channel, response);
        }
    }

    pub(super) fn check_and_start_disclosure(
        &mut self,
        peer: PeerId,
        ask: DiscloseAsk,
        channel: libp2p::request_response::ResponseChannel<Response>,
    ) -> Option<(
        libp2p::request_response::ResponseChannel<Response>,
        Response,
    )> {
        let DiscloseAsk {
            agreement,
            epoch,
            result_kind,
            fields,
            tokens,
        } = ask;
        let Some(requester) = PublicKey::from_peer_id(&peer) else {
            return Some((
                channel,
                self.refuse_request(peer, "disclosure", Refusal::NotConsumer),
            ));
        };
        let Some((terms, superseded)) = self.provided(&agreement) else {
            return Some((
                channel,
                self.refuse_request(peer, "disclosure", Refusal::UnknownAgreement),
            ));
        };
        let key = counter_key("disc", &agreement, epoch);
        let used: u64 = self.store.counter(&key).ok().flatten().unwrap_or(0);
        let Some(state) = self.find_state(&agreement).map(|t| t.state.clone()) else {
            return Some((
                channel,
                self.refuse_request(peer, "disclosure", Refusal::UnknownAgreement),
            ));
        };
        let check = DisclosureCheck {
            requester: &requester,
            admission: self.admitted(&requester),
            epoch,
            result_kind: &result_kind,
            fields: &fields,
            records_requested: tokens.len() as u64,
            records_used: used,
        };
        if let Err(refusal) = state.check_disclosure(now(), superseded, &check) {
            return Some((channel, self.refuse_request(peer, "disclosure", refusal)));
        }
        if !feed_dir(&self.data_dir, &agreement, epoch)
            .join("index.bin")
            .exists()
        {
            return Some((
                channel,
                self.refuse_request(peer, "disclosure", Refusal::NotPublished { epoch }),
            ));
        }
        // Count the quota before anything is disclosed.
        if let Err(e) = self.store.set_counter(&key, &(used + tokens.len() as u64)) {
            tracing::error!(error = %e, "cannot record disclosure use; refusing");
            return Some((
                channel,
                self.refuse_request(peer, "disclosure", Refusal::ProviderFailed { epoch }),
            ));
        }
        let data_dir = self.data_dir.clone();
        let internal = self.internal_tx.clone();
        let identity_seed = *self.identity.seed();
        let label = self.label(&requester);
        tokio::task::spawn_blocking(move || {
            let response = match crate::publish::disclose::disclose(
                &data_dir,
                &terms,
                epoch,
                &result_kind,
                &fields,
                &tokens,
                now(),
            ) {
                Ok(d) => {
                    let digest = dxmesh_protocol::feed::disclosure_digest(&d);
                    tracing::info!(
                        consumer = %label,
                        agreement = %dxmesh_protocol::hex(&agreement),
                        epoch,
                        result_kind = %result_kind,
                        requested = tokens.len(),
                        records = d.records.len(),
                        unknown = d.unknown.len(),
                        digest = %dxmesh_protocol::hex(&digest),
                        "disclosure served"
                    );
                    let _ = internal.send(Event::Audit(
                        dxmesh_protocol::audit::Event::DisclosureServed {
                            agreement,
                            epoch,
                            consumer: requester,
                            result_kind: result_kind.clone(),
                            requested: tokens.len() as u64,
                            records: d.records.len() as u64,
                            digest,
                        },
                    ));
                    match dxmesh_protocol::identity::Identity::from_seed(identity_seed)
                        .ok()
                        .and_then(|id| Signed::sign(&id, &d).ok())
                    {
                        Some(disclosure) => Response::Disclosed { disclosure },
                        None => Response::Denied {
                            refusal: Refusal::ProviderFailed { epoch },
                        },
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "disclosure failed");
                    Response::Denied {
                        refusal: Refusal::ProviderFailed { epoch },
                    }
                }
            };
            let _ = internal.send(Event::Disclosed { channel, response });
        });
        let _ = superseded;
        None
    }

    pub(super) fn on_disclose_answer(
        &mut self,
        peer: PeerId,
        reply: Option<oneshot::Sender<AdminResponse>>,
        out: Option<String>,
        answer: Response,
    ) {
        let response = match answer {
            Response::Disclosed { disclosure } => {
                let provider = PublicKey::from_peer_id(&peer);
                match provider.map(|p| disclosure.verify_by(&p)) {
                    Some(Ok(d)) => {
                        if let Some(p) = provider {
                            self.log(dxmesh_protocol::audit::Event::DisclosureReceived {
                                agreement: d.agreement,
                                epoch: d.epoch,
                                provider: p,
                                result_kind: d.result_kind.clone(),
                                records: d.records.len() as u64,
                                digest: dxmesh_protocol::feed::disclosure_digest(&d),
                            });
                        }
                        tracing::info!(
                            %peer,
                            agreement = %dxmesh_protocol::hex(&d.agreement),
                            result_kind = %d.result_kind,
                            records = d.records.len(),
                            digest = %dxmesh_protocol::hex(&dxmesh_protocol::feed::disclosure_digest(&d)),
                            "disclosure received"
                        );
                        match write_disclosure(out.as_deref(), &d) {
                            Ok(()) => AdminResponse::Disclosed {
                                records: d.records.len() as u64,
                                unknown: d.unknown.len() as u64,
                                out,
                            },
                            Err(e) => AdminResponse::Error { message: e },
                        }
                    }
                    _ => AdminResponse::Error {
                        message: "the disclosure is not signed by the provider".into(),
                    },
                }
            }
            Response::Denied { refusal } => AdminResponse::Error {
                message: format!("refused by the provider: {refusal} [{}]", refusal.code()),
            },
            other => AdminResponse::Error {
                message: format!("unexpected answer: {other:?}"),
            },
        };
        if let Some(r) = reply {
            let _ = r.send(response);
        }
    }
}

/// The first `n` distinct tokens of a pulled feed.
fn first_tokens(
    data_dir: &std::path::Path,
    terms: &Terms,
    epoch: u64,
    n: u64,
) -> Result<Vec<IdToken>, String> {
    let reader = pulls::FeedReader::open(data_dir, terms, epoch).map_err(|e| e.to_string())?;
    let mut out: Vec<IdToken> = Vec::new();
    for i in 0..reader.manifest().chunks() {
        let c = reader.chunk(i).map_err(|e| e.to_string())?;
        for r in 0..c.count as usize {
            let t = c.id(r);
            if out.last() != Some(&t) {
                out.push(t);
            }
            if out.len() as u64 >= n {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

fn write_disclosure(
    out: Option<&str>,
    d: &dxmesh_protocol::feed::Disclosure,
) -> Result<(), String> {
    let Some(path) = out else { return Ok(()) };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&d.fields).map_err(|e| e.to_string())?;
    for r in &d.records {
        w.write_record(&r.values).map_err(|e| e.to_string())?;
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    crate::base::fsutil::write_atomic(std::path::Path::new(path), &bytes, 0o600)
        .map_err(|e| format!("{path}: {e}"))
}
