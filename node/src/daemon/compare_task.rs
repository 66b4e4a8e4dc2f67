//! The comparator's cycle, run as one task: make sure every feed of the job
//! is pulled, run the comparison pass, ask the registry provider to disclose
//! the ministry candidates' ID numbers, ask the ministry which of them are
//! insured in another province, run the pass again with that answer, request
//! the disclosures each result allows, and write the result files and
//! `summary.json`. Network steps go through the event loop ([`Op`]); the
//! passes run on blocking threads. Also here: the ministry's side of the
//! national query.

use super::feed_handlers::Internal;
use super::{Node, Pending, now};
use crate::admin::{AdminRequest, AdminResponse};
use crate::compare::{Input, PassOutput, run_pass};
use crate::jobs::Compiled;
use crate::pulls::FeedReader;
use dxmesh_protocol::agreement::{AgreementId, DisclosureCheck, Refusal, Terms};
use dxmesh_protocol::feed::{Disclosure, NationalAnswer};
use dxmesh_protocol::id::IdNumber;
use dxmesh_protocol::identity::PublicKey;
use dxmesh_protocol::merkle::Hash;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::token::IdToken;
use dxmesh_protocol::wire::{Request, Response};
use libp2p::PeerId;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, oneshot};

/// Tokens per disclosure request and IDs per national query.
const BATCH: usize = 100_000;

/// A network step the comparator task asks the event loop to take.
pub(crate) enum Op {
    Pull {
        agreement: AgreementId,
        epoch: u64,
    },
    Disclose {
        agreement: AgreementId,
        epoch: u64,
        result_kind: String,
        fields: Vec<String>,
        tokens: Vec<IdToken>,
    },
    National {
        agreement: AgreementId,
        epoch: u64,
        fields: Vec<String>,
        ids: Vec<IdNumber>,
    },
}

/// What a step returned.
pub(crate) enum OpOut {
    Pulled,
    Disclosure(Disclosure),
    National(NationalAnswer),
}

pub(crate) type OpReply = oneshot::Sender<Result<OpOut, String>>;

async fn op(handle: &mpsc::UnboundedSender<Internal>, op: Op) -> Result<OpOut, String> {
    let (tx, rx) = oneshot::channel();
    handle
        .send(Internal::Op { op, reply: tx })
        .map_err(|_| "the node is shutting down".to_string())?;
    rx.await
        .map_err(|_| "the node is shutting down".to_string())?
}

/// One input bound to its agreement.
#[derive(Clone)]
pub(crate) struct Binding {
    name: String,
    terms: Terms,
}

/// What `summary.json` says.
#[derive(Debug, Serialize)]
struct Summary {
    epoch: u64,
    reference_date: String,
    results: BTreeMap<String, ResultSummary>,
    inputs: BTreeMap<String, InputSummary>,
    coverage: BTreeMap<String, CoverageRow>,
    ministry: Option<MinistrySummary>,
    timing_secs: BTreeMap<String, f64>,
    distinct_tokens_merged: u64,
}

#[derive(Debug, Serialize)]
struct ResultSummary {
    count: u64,
    disclosed_records: u64,
    file: String,
}

#[derive(Debug, Serialize)]
struct InputSummary {
    agreement: String,
    provider: String,
    dataset: String,
    records_read: u64,
    ids_in_input: u64,
    manifest_root: String,
    manifest_records: u64,
    manifest_chunks: u32,
}

#[derive(Debug, Serialize)]
struct CoverageRow {
    eligible: u64,
    covered: u64,
}

#[derive(Debug, Serialize)]
struct MinistrySummary {
    candidates: u64,
    ids_queried: u64,
    found_in_national_index: u64,
    removed_other_province: u64,
}

impl Node {
    /// The active agreement (this node consumer) for `dataset` from a provider of `department`.
    fn consumer_agreement(&self, dataset: &str, department: Option<&str>) -> Result<Terms, String> {
        let me = self.identity.public();
        let t = now();
        let roster = self.roster.as_ref().map(|(_, r)| r);
        let found: Vec<Terms> = self
            .agreements
            .threads()
            .filter(|th| th.state.terms.consumer == me && th.state.terms.dataset == dataset)
            .filter(|th| {
                self.agreements.status(th, t) == dxmesh_protocol::agreement::Status::Active
            })
            .filter(|th| {
                department.is_none_or(|d| {
                    roster
                        .and_then(|r| r.member(&th.state.terms.provider))
                        .is_some_and(|m| m.department == d)
                })
            })
            .map(|th| th.state.terms.clone())
            .collect();
        match found.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(format!(
                "no active agreement for dataset {dataset:?}{} where this node is the consumer",
                department.map(|d| format!(" from {d}")).unwrap_or_default()
            )),
            _ => Err(format!(
                "several active agreements for dataset {dataset:?}; name the provider"
            )),
        }
    }

    pub(super) fn on_compare_admin(
        &mut self,
        request: AdminRequest,
        reply: oneshot::Sender<AdminResponse>,
    ) {
        let AdminRequest::Compare {
            jobs,
            jobs_path,
            epoch,
            out,
        } = request
        else {
            let _ = reply.send(AdminResponse::Error {
                message: "not a compare request".into(),
            });
            return;
        };
        let fail = |reply: oneshot::Sender<AdminResponse>, message: String| {
            let _ = reply.send(AdminResponse::Error { message });
        };
        let compiled = match jobs.compile(Path::new(&jobs_path)) {
            Ok(c) => c,
            Err(e) => return fail(reply, e.to_string()),
        };
        let mut bindings = Vec::new();
        for (name, spec) in &compiled.inputs {
            match self.consumer_agreement(&spec.dataset, Some(&spec.provider)) {
                Ok(terms) => bindings.push(Binding {
                    name: name.clone(),
                    terms,
                }),
                Err(e) => return fail(reply, format!("input {name}: {e}")),
            }
        }
        let ministry = match &compiled.ministry {
            None => None,
            Some(m) => match self.consumer_agreement(&m.dataset, None) {
                Ok(t) => Some(t),
                Err(e) => return fail(reply, format!("ministry: {e}")),
            },
        };
        let epoch =
            match epoch.or_else(|| bindings.first().and_then(|b| b.terms.cycle.epoch_at(now()))) {
                Some(e) => e,
                None => return fail(reply, "the cycle has not started".into()),
            };
        let handle = self.internal_tx.clone();
        let data_dir = self.data_dir.clone();
        tokio::spawn(async move {
            let response = match run_compare(
                handle,
                data_dir,
                compiled,
                bindings,
                ministry,
                epoch,
                PathBuf::from(out),
            )
            .await
            {
                Ok(summary) => AdminResponse::Compared { summary },
                Err(message) => AdminResponse::Error { message },
            };
            let _ = reply.send(response);
        });
    }

    /// The provider of `agreement` and its peer id, if it is connected now;
    /// `role` names it in the error ("provider", "ministry").
    fn connected_provider(
        &self,
        agreement: &AgreementId,
        role: &str,
    ) -> Result<(PublicKey, PeerId), String> {
        let provider = self
            .agreements
            .by_agreement(agreement)
            .map(|t| t.state.terms.provider)
            .ok_or_else(|| "unknown agreement".to_string())?;
        let peer = provider.peer_id();
        if !self.connected.contains(&peer) {
            return Err(format!(
                "the {role} {} is not connected",
                self.label(&provider)
            ));
        }
        Ok((provider, peer))
    }

    pub(super) fn on_op(&mut self, op: Op, reply: OpReply) {
        match op {
            Op::Pull { agreement, epoch } => {
                if crate::pulls::is_complete(&self.data_dir, &agreement, epoch) {
                    let _ = reply.send(Ok(OpOut::Pulled));
                    return;
                }
                let (tx, rx) = oneshot::channel();
                if let Err(e) = self.start_pull_with(agreement, epoch, tx) {
                    let _ = reply.send(Err(e));
                    return;
                }
                tokio::spawn(async move {
                    let r = match rx.await {
                        Ok(AdminResponse::Pulled { .. }) => Ok(OpOut::Pulled),
                        Ok(AdminResponse::Error { message }) => Err(message),
                        Ok(_) => Err("unexpected pull result".into()),
                        Err(_) => Err("the node is shutting down".into()),
                    };
                    let _ = reply.send(r);
                });
            }
            Op::Disclose {
                agreement,
                epoch,
                result_kind,
                fields,
                tokens,
            } => {
                let (provider, peer) = match self.connected_provider(&agreement, "provider") {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return;
                    }
                };
                self.send(
                    peer,
                    Request::Disclose {
                        agreement,
                        epoch,
                        result_kind,
                        fields,
                        tokens,
                    },
                    Pending::DiscloseOp { provider, reply },
                );
            }
            Op::National {
                agreement,
                epoch,
                fields,
                ids,
            } => {
                let (provider, peer) = match self.connected_provider(&agreement, "ministry") {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return;
                    }
                };
                self.send(
                    peer,
                    Request::NationalQuery {
                        agreement,
                        epoch,
                        fields,
                        ids,
                    },
                    Pending::NationalOp { provider, reply },
                );
            }
        }
    }

    pub(super) fn on_disclose_op_answer(
        &mut self,
        provider: PublicKey,
        reply: OpReply,
        answer: Response,
    ) {
        let r = match answer {
            Response::Disclosed { disclosure } => disclosure
                .verify_by(&provider)
                .map(OpOut::Disclosure)
                .map_err(|e| format!("the disclosure does not verify: {e}")),
            Response::Denied { refusal } => Err(format!(
                "refused by the provider: {refusal} [{}]",
                refusal.code()
            )),
            other => Err(format!("unexpected answer: {other:?}")),
        };
        if let Ok(OpOut::Disclosure(d)) = &r {
            self.log(dxmesh_protocol::audit::Event::DisclosureReceived {
                agreement: d.agreement,
                epoch: d.epoch,
                provider,
                result_kind: d.result_kind.clone(),
                records: d.records.len() as u64,
                digest: dxmesh_protocol::feed::disclosure_digest(d),
            });
            tracing::info!(
                provider = %self.label(&provider),
                result_kind = %d.result_kind,
                records = d.records.len(),
                digest = %dxmesh_protocol::hex(&dxmesh_protocol::feed::disclosure_digest(d)),
                "disclosure received"
            );
        }
        let _ = reply.send(r);
    }

    pub(super) fn on_national_op_answer(
        &mut self,
        provider: PublicKey,
        reply: OpReply,
        answer: Response,
    ) {
        if let Response::National { answer: a } = &answer
            && let Ok(a) = a.verify_by(&provider)
        {
            self.log(dxmesh_protocol::audit::Event::NationalQuery {
                agreement: a.agreement,
                epoch: a.epoch,
                peer: provider,
                asked: a.asked,
                found: a.found.len() as u64,
                answered: false,
            });
        }
        let r = match answer {
            Response::National { answer } => answer
                .verify_by(&provider)
                .map(OpOut::National)
                .map_err(|e| format!("the ministry's answer does not verify: {e}")),
            Response::Denied { refusal } => Err(format!(
                "refused by the ministry: {refusal} [{}]",
                refusal.code()
            )),
            other => Err(format!("unexpected answer: {other:?}")),
        };
        let _ = reply.send(r);
    }

    /// The ministry's side: answer a national query under the agreement.
    pub(super) fn on_national_query(
        &mut self,
        peer: PeerId,
        agreement: AgreementId,
        epoch: u64,
        fields: Vec<String>,
        ids: Vec<IdNumber>,
        channel: libp2p::request_response::ResponseChannel<Response>,
    ) {
        let deny = |node: &mut Node, refusal: Refusal, channel| {
            node.record_refusal(
                Some(peer),
                None,
                format!("national query: {refusal} [{}]", refusal.code()),
            );
            let _ = node
                .swarm
                .behaviour_mut()
                .control
                .send_response(channel, Response::Denied { refusal });
        };
        let Some(requester) = PublicKey::from_peer_id(&peer) else {
            return deny(self, Refusal::NotConsumer, channel);
        };
        let Some(th) = self.agreements.by_agreement(&agreement).cloned() else {
            return deny(self, Refusal::UnknownAgreement, channel);
        };
        if th.state.terms.provider != self.identity.public() {
            return deny(self, Refusal::UnknownAgreement, channel);
        }
        let superseded = self.agreements.superseded(&th, now());
        let key = format!("natq/{}/{epoch}", dxmesh_protocol::hex(&agreement)).into_bytes();
        let used: u64 = self.store.counter(&key).ok().flatten().unwrap_or(0);
        let check = DisclosureCheck {
            requester: &requester,
            admission: self.admission(&peer),
            epoch,
            result_kind: "cross_province",
            fields: &fields,
            records_requested: ids.len() as u64,
            records_used: used,
        };
        if let Err(refusal) = th.state.check_disclosure(now(), superseded, &check) {
            return deny(self, refusal, channel);
        }
        if self
            .store
            .set_counter(&key, &(used + ids.len() as u64))
            .is_err()
        {
            return deny(self, Refusal::ProviderFailed { epoch }, channel);
        }
        let terms = th.state.terms.clone();
        let data_dir = self.data_dir.clone();
        let seed = *self.identity.seed();
        let internal = self.internal_tx.clone();
        let label = self.label(&requester);
        tokio::task::spawn_blocking(move || {
            let response = match national_lookup(&data_dir, &terms, epoch, &fields, &ids) {
                Ok(answer) => {
                    tracing::info!(consumer = %label, asked = ids.len(), found = answer.found.len(), "national query answered");
                    let _ = internal.send(Internal::Audit(
                        dxmesh_protocol::audit::Event::NationalQuery {
                            agreement,
                            epoch,
                            peer: requester,
                            asked: ids.len() as u64,
                            found: answer.found.len() as u64,
                            answered: true,
                        },
                    ));
                    match dxmesh_protocol::identity::Identity::from_seed(seed)
                        .ok()
                        .and_then(|id| Signed::sign(&id, &answer).ok())
                    {
                        Some(answer) => Response::National { answer },
                        None => Response::Denied {
                            refusal: Refusal::ProviderFailed { epoch },
                        },
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "national query failed");
                    Response::Denied {
                        refusal: Refusal::ProviderFailed { epoch },
                    }
                }
            };
            let _ = internal.send(Internal::Disclosed { channel, response });
        });
    }
}

/// An ID and the national index values asked for.
type NationalRecord = (IdNumber, Vec<String>);

/// Looks IDs up in the national index dataset (one scan for the whole batch).
fn national_lookup(
    data_dir: &Path,
    terms: &Terms,
    epoch: u64,
    fields: &[String],
    ids: &[IdNumber],
) -> Result<NationalAnswer, String> {
    let reader =
        crate::dataset::DatasetReader::open(data_dir, &terms.dataset).map_err(|e| e.to_string())?;
    let cols: Vec<usize> = fields
        .iter()
        .map(|f| {
            reader
                .columns()
                .iter()
                .position(|c| c == f)
                .ok_or_else(|| format!("the national index has no column {f:?}"))
        })
        .collect::<Result<_, _>>()?;
    let wanted: std::collections::HashSet<IdNumber> = ids.iter().copied().collect();
    let mut found = Vec::new();
    let mut raw = crate::feeds::RawBlocks::open(&reader, false).map_err(|e| e.to_string())?;
    loop {
        let mut group = Vec::new();
        while group.len() < 16 {
            match raw.next_block().map_err(|e| e.to_string())? {
                Some(b) => group.push(b),
                None => break,
            }
        }
        if group.is_empty() {
            break;
        }
        use rayon::prelude::*;
        let parts: Vec<Result<Vec<NationalRecord>, String>> = group
            .par_iter()
            .map(|bytes| {
                let mut cursor = crate::dataset::BlockCursor::new(bytes)?;
                let mut values = Vec::new();
                let mut found = Vec::new();
                while let Some(id) = cursor.next_record(|i| cols.contains(&i), &mut values)? {
                    if wanted.contains(&id) {
                        let record = cols
                            .iter()
                            .map(|c| values.get(*c).copied().unwrap_or("").to_string())
                            .collect();
                        found.push((id, record));
                    }
                }
                Ok(found)
            })
            .collect();
        for p in parts {
            found.extend(p?);
        }
    }
    found.sort();
    Ok(NationalAnswer {
        agreement: terms.id(),
        epoch,
        fields: fields.to_vec(),
        found,
        asked: ids.len() as u64,
        at: now(),
    })
}

fn open_inputs(data_dir: &Path, bindings: &[Binding], epoch: u64) -> Result<Vec<Input>, String> {
    bindings
        .iter()
        .map(|b| {
            FeedReader::open(data_dir, &b.terms, epoch)
                .map(|reader| Input {
                    name: b.name.clone(),
                    reader,
                })
                .map_err(|e| format!("input {}: {e}", b.name))
        })
        .collect()
}

async fn pass(
    data_dir: &Path,
    job: &Compiled,
    bindings: &[Binding],
    epoch: u64,
    other: Vec<IdToken>,
) -> Result<PassOutput, String> {
    let (data_dir, job, bindings) = (data_dir.to_path_buf(), job.clone(), bindings.to_vec());
    tokio::task::spawn_blocking(move || {
        let inputs = open_inputs(&data_dir, &bindings, epoch)?;
        run_pass(&job, inputs, &other).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("the comparison pass failed: {e}"))?
}

async fn disclose_all(
    handle: &mpsc::UnboundedSender<Internal>,
    terms: &Terms,
    epoch: u64,
    kind: &str,
    fields: &[String],
    tokens: &[IdToken],
) -> Result<Vec<(IdToken, Vec<String>)>, String> {
    let mut out = Vec::new();
    for batch in tokens.chunks(BATCH) {
        let r = op(
            handle,
            Op::Disclose {
                agreement: terms.id(),
                epoch,
                result_kind: kind.to_string(),
                fields: fields.to_vec(),
                tokens: batch.to_vec(),
            },
        )
        .await?;
        if let OpOut::Disclosure(d) = r {
            if d.fields != fields {
                return Err("the provider disclosed other fields than asked".into());
            }
            out.extend(d.records.into_iter().map(|r| (r.token, r.values)));
        }
    }
    Ok(out)
}

fn write_csv(path: &Path, header: &[String], rows: &[Vec<String>]) -> Result<(), String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(|e| e.to_string())?;
    for r in rows {
        w.write_record(r).map_err(|e| e.to_string())?;
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    crate::fsutil::write_atomic(path, &bytes, 0o600).map_err(|e| format!("{}: {e}", path.display()))
}

#[allow(clippy::too_many_arguments)]
async fn run_compare(
    handle: mpsc::UnboundedSender<Internal>,
    data_dir: PathBuf,
    job: Compiled,
    bindings: Vec<Binding>,
    ministry_terms: Option<Terms>,
    epoch: u64,
    out: PathBuf,
) -> Result<String, String> {
    let started = std::time::Instant::now();
    let mut timing = BTreeMap::new();
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    // 1. Every feed pulled (resumed if interrupted).
    let mut pulled = BTreeSet::new();
    for b in &bindings {
        if pulled.insert(b.terms.id()) {
            op(
                &handle,
                Op::Pull {
                    agreement: b.terms.id(),
                    epoch,
                },
            )
            .await
            .map_err(|e| format!("pulling input {}: {e}", b.name))?;
        }
    }
    timing.insert("pull".to_string(), started.elapsed().as_secs_f64());
    let t = std::time::Instant::now();
    // 2. First pass (candidates for the ministry check).
    let binding_of = |name: &str| bindings.iter().find(|b| b.name == name).cloned();
    let mut disclosed_cache: BTreeMap<IdToken, Vec<Vec<String>>> = BTreeMap::new();
    let mut cache_key: Option<(String, Vec<String>)> = None;
    let mut other_province = Vec::new();
    let mut ministry_summary = None;
    if let (Some(m), Some(mterms)) = (&job.ministry, &ministry_terms) {
        let first = pass(&data_dir, &job, &bindings, epoch, Vec::new()).await?;
        timing.insert("pass_1".to_string(), t.elapsed().as_secs_f64());
        let src = binding_of(&m.id_source).ok_or("ministry.id_source is not an input")?;
        // Disclose the candidates with the fields the candidates result itself
        // discloses (so the final list reuses them), at least id_number.
        let fields: Vec<String> = job
            .results
            .iter()
            .find(|(n, _, d)| {
                *n == m.candidates && d.as_ref().is_some_and(|d| d.input == m.id_source)
            })
            .and_then(|(_, _, d)| d.as_ref().map(|d| d.fields.clone()))
            .unwrap_or_else(|| vec!["id_number".to_string()]);
        let id_col = fields
            .iter()
            .position(|f| f == "id_number")
            .ok_or("the candidates' disclosure must include id_number")?;
        let recs = disclose_all(
            &handle,
            &src.terms,
            epoch,
            &m.candidates,
            &fields,
            &first.candidates,
        )
        .await?;
        let mut token_of: BTreeMap<IdNumber, IdToken> = BTreeMap::new();
        for (tok, values) in &recs {
            if let Some(id) = values.get(id_col).and_then(|v| {
                dxmesh_protocol::id::normalize(v, dxmesh_protocol::date::Date::new(9999, 12, 31)?)
                    .ok()
            }) {
                token_of.insert(id, *tok);
            }
            disclosed_cache
                .entry(*tok)
                .or_default()
                .push(values.clone());
        }
        cache_key = Some((m.id_source.clone(), fields));
        let ids: Vec<IdNumber> = token_of.keys().copied().collect();
        let nfields = vec!["province_code".to_string(), "insurance_type".to_string()];
        let mut found = 0u64;
        let mut elsewhere = BTreeSet::new();
        for batch in ids.chunks(BATCH) {
            if let OpOut::National(a) = op(
                &handle,
                Op::National {
                    agreement: mterms.id(),
                    epoch,
                    fields: nfields.clone(),
                    ids: batch.to_vec(),
                },
            )
            .await?
            {
                found += a.found.len() as u64;
                for (id, values) in a.found {
                    let province = values.first().map(String::as_str).unwrap_or("");
                    let kind = values.get(1).map(String::as_str).unwrap_or("");
                    if province != m.home_province
                        && m.insurance_types.iter().any(|t| t == kind)
                        && let Some(tok) = token_of.get(&id)
                    {
                        elsewhere.insert(*tok);
                    }
                }
            }
        }
        other_province = elsewhere.into_iter().collect();
        ministry_summary = Some(MinistrySummary {
            candidates: first.candidates.len() as u64,
            ids_queried: ids.len() as u64,
            found_in_national_index: found,
            removed_other_province: other_province.len() as u64,
        });
        timing.insert("ministry".to_string(), t.elapsed().as_secs_f64());
    }
    // 3. The pass that counts.
    let t2 = std::time::Instant::now();
    let result = pass(&data_dir, &job, &bindings, epoch, other_province).await?;
    timing.insert("pass".to_string(), t2.elapsed().as_secs_f64());
    // 4. Disclosures and files.
    let t3 = std::time::Instant::now();
    let mut results = BTreeMap::new();
    for (j, (name, _, disclose)) in job.results.iter().enumerate() {
        let tokens = &result.results[j];
        let file = out.join(format!("{name}.csv"));
        let mut disclosed_records = 0u64;
        match disclose {
            Some(d) => {
                let b = binding_of(&d.input).ok_or("disclose.input is not an input")?;
                let reuse = cache_key.as_ref() == Some(&(d.input.clone(), d.fields.clone()));
                let mut rows: Vec<Vec<String>> = Vec::new();
                let mut ask = Vec::new();
                for t in tokens {
                    match (reuse, disclosed_cache.get(t)) {
                        (true, Some(rs)) => rows.extend(rs.iter().cloned()),
                        _ => ask.push(*t),
                    }
                }
                if !ask.is_empty() {
                    rows.extend(
                        disclose_all(&handle, &b.terms, epoch, name, &d.fields, &ask)
                            .await?
                            .into_iter()
                            .map(|(_, v)| v),
                    );
                }
                rows.sort();
                rows.dedup();
                disclosed_records = rows.len() as u64;
                write_csv(&file, &d.fields, &rows)?;
            }
            None => {
                let rows: Vec<Vec<String>> = tokens.iter().map(|t| vec![t.to_string()]).collect();
                write_csv(&file, &["token".to_string()], &rows)?;
            }
        }
        results.insert(
            name.clone(),
            ResultSummary {
                count: tokens.len() as u64,
                disclosed_records,
                file: file.display().to_string(),
            },
        );
    }
    // The verified findings the province uploads to the ministry.
    let mut verified: Vec<Vec<String>> = Vec::new();
    for (name, r) in &results {
        if let Ok(mut rd) = csv::Reader::from_path(&r.file)
            && rd
                .headers()
                .map(|h| h.get(0) == Some("id_number"))
                .unwrap_or(false)
        {
            for rec in rd.records().flatten() {
                if let Some(id) = rec.get(0) {
                    verified.push(vec![id.to_string(), name.clone()]);
                }
            }
        }
    }
    verified.sort();
    verified.dedup();
    write_csv(
        &out.join("verified_registrations.csv"),
        &["id_number".into(), "finding".into()],
        &verified,
    )?;
    if job.coverage.is_some() {
        let rows: Vec<Vec<String>> = result
            .coverage
            .iter()
            .map(|(r, (e, c))| vec![r.clone(), e.to_string(), c.to_string()])
            .collect();
        write_csv(
            &out.join("coverage.csv"),
            &["region_code".into(), "eligible".into(), "covered".into()],
            &rows,
        )?;
    }
    timing.insert("disclose_and_write".to_string(), t3.elapsed().as_secs_f64());
    timing.insert("total".to_string(), started.elapsed().as_secs_f64());
    let mut inputs = BTreeMap::new();
    let mut reference_date = String::new();
    for (i, b) in bindings.iter().enumerate() {
        let reader = FeedReader::open(&data_dir, &b.terms, epoch).map_err(|e| e.to_string())?;
        let m = reader.manifest();
        reference_date = m.reference_date.to_string();
        inputs.insert(
            b.name.clone(),
            InputSummary {
                agreement: dxmesh_protocol::hex(&b.terms.id()),
                provider: b.terms.provider.peer_id().to_string(),
                dataset: b.terms.dataset.clone(),
                records_read: result.records[i],
                ids_in_input: result.members[i],
                manifest_root: dxmesh_protocol::hex(&m.root),
                manifest_records: m.records,
                manifest_chunks: m.chunks(),
            },
        );
    }
    let summary = Summary {
        epoch,
        reference_date,
        results,
        inputs,
        coverage: result
            .coverage
            .iter()
            .map(|(r, (e, c))| {
                (
                    r.clone(),
                    CoverageRow {
                        eligible: *e,
                        covered: *c,
                    },
                )
            })
            .collect(),
        ministry: ministry_summary,
        timing_secs: timing,
        distinct_tokens_merged: result.distinct_tokens,
    };
    let sha = |p: &str| -> Hash {
        let bytes = std::fs::read(p).unwrap_or_default();
        let mut h = [0u8; 32];
        h.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref());
        h
    };
    let _ = handle.send(Internal::Audit(dxmesh_protocol::audit::Event::JobRun {
        epoch,
        inputs: bindings
            .iter()
            .filter_map(|b| {
                crate::pulls::stored_manifest(&data_dir, &b.terms.id(), epoch)
                    .map(|m| (b.name.clone(), m.digest()))
            })
            .collect(),
        results: summary
            .results
            .iter()
            .map(|(n, r)| (n.clone(), r.count, sha(&r.file)))
            .collect(),
    }));
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    crate::fsutil::write_atomic(&out.join("summary.json"), text.as_bytes(), 0o600)
        .map_err(|e| e.to_string())?;
    Ok(text)
}
