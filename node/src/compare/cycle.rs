//! The comparator's cycle, run as one task: make sure every feed of the job
//! is pulled, run the comparison pass, ask the registry provider to disclose
//! the ministry candidates' ID numbers, ask the ministry which of them are
//! insured in another province, run the pass again with that answer, request
//! the disclosures each result allows, and write the result files and
//! `summary.json`. Network steps go through the event loop ([`Op`]); the
//! passes run on blocking threads. Also here: the ministry's side of the
//! national query.

use crate::compare::jobs::Compiled;
use crate::compare::pass::{Input, PassOutput, run_pass};
use crate::pull::pulls::FeedReader;
use dxmesh_protocol::agreement::{AgreementId, Terms};
use dxmesh_protocol::feed::{Disclosure, NationalAnswer};
use dxmesh_protocol::id::IdNumber;
use dxmesh_protocol::merkle::Hash;
use dxmesh_protocol::token::IdToken;
use dxmesh_protocol::wire::DisclosureRequest;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, oneshot};

/// Tokens per disclosure request and IDs per national query.
const BATCH: usize = 100_000;

/// A network step the comparator task asks the event loop to take.
pub enum Op {
    /// Pull the feed of an agreement for an epoch (answered once it is held).
    Pull {
        /// The agreement the feed is published under.
        agreement: AgreementId,
        /// The epoch (cycle number) of the feed.
        epoch: u64,
    },
    /// Ask a provider to disclose the fields of some result persons.
    Disclose(DisclosureRequest),
    /// Ask the ministry which of these ID numbers are insured elsewhere.
    National {
        /// The agreement with the ministry.
        agreement: AgreementId,
        /// The epoch of the comparator's cycle.
        epoch: u64,
        /// The fields of the national index asked for.
        fields: Vec<String>,
        /// The candidates' ID numbers.
        ids: Vec<IdNumber>,
    },
    /// Append an event to the node's audit log (answered once it is durable).
    Log(dxmesh_protocol::audit::Event),
}

/// What a step returned.
pub enum OpOut {
    /// The feed is pulled and verified.
    Pulled,
    /// The provider's signed disclosure.
    Disclosure(Disclosure),
    /// The ministry's signed answer.
    National(NationalAnswer),
    /// The event is in the audit log.
    Logged,
}

/// Where the event loop sends a step's answer.
pub type OpReply = oneshot::Sender<Result<OpOut, String>>;

/// The cycle's way to the node: each network step goes to the node's event
/// loop with a channel for its answer. The cycle knows nothing else of the
/// daemon.
#[derive(Clone)]
pub struct Handle(mpsc::UnboundedSender<(Op, OpReply)>);

impl Handle {
    /// A handle and the receiving end the event loop polls.
    pub fn new() -> (Handle, mpsc::UnboundedReceiver<(Op, OpReply)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Handle(tx), rx)
    }

    async fn ask(&self, op: Op) -> Result<OpOut, String> {
        let (tx, rx) = oneshot::channel();
        self.0
            .send((op, tx))
            .map_err(|_| "the node is shutting down".to_string())?;
        rx.await
            .map_err(|_| "the node is shutting down".to_string())?
    }
}

/// One input bound to its agreement.
#[derive(Clone)]
pub struct Binding {
    /// The input's name in the job file.
    pub name: String,
    /// The agreement the input is pulled under.
    pub terms: Terms,
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
    handle: &Handle,
    terms: &Terms,
    epoch: u64,
    kind: &str,
    fields: &[String],
    tokens: &[IdToken],
) -> Result<Vec<(IdToken, Vec<String>)>, String> {
    let mut out = Vec::new();
    for batch in tokens.chunks(BATCH) {
        let r = handle
            .ask(Op::Disclose(DisclosureRequest {
                agreement: terms.id(),
                epoch,
                result_kind: kind.to_string(),
                fields: fields.to_vec(),
                tokens: batch.to_vec(),
            }))
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
    crate::base::fsutil::write_atomic(path, &bytes, 0o600)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs one comparison cycle of `job` for `epoch` and writes its results
/// under `out`; returns the path of `summary.json`.
#[allow(clippy::too_many_arguments)]
pub async fn run_compare(
    handle: Handle,
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
            handle
                .ask(Op::Pull {
                    agreement: b.terms.id(),
                    epoch,
                })
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
            if let OpOut::National(a) = handle
                .ask(Op::National {
                    agreement: mterms.id(),
                    epoch,
                    fields: nfields.clone(),
                    ids: batch.to_vec(),
                })
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
    handle
        .ask(Op::Log(dxmesh_protocol::audit::Event::JobRun {
            epoch,
            inputs: bindings
                .iter()
                .filter_map(|b| {
                    crate::pull::pulls::stored_manifest(&data_dir, &b.terms.id(), epoch)
                        .map(|m| (b.name.clone(), m.digest()))
                })
                .collect(),
            results: summary
                .results
                .iter()
                .map(|(n, r)| (n.clone(), r.count, sha(&r.file)))
                .collect(),
        }))
        .await?;
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    crate::base::fsutil::write_atomic(&out.join("summary.json"), text.as_bytes(), 0o600)
        .map_err(|e| e.to_string())?;
    Ok(text)
}
