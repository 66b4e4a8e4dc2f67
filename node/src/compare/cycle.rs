//! The comparator's cycle, run as one task in typed stages, each consuming
//! the one before ([`run_compare`]): make sure every feed of the job is
//! pulled; if the job checks with the ministry, run a first comparison pass,
//! ask the registry provider to disclose the candidates' ID numbers and ask
//! the ministry which of them are insured in another province; run the pass
//! that counts with that answer; request the disclosures each result allows
//! and write the result files; then log the `JobRun` audit event and write
//! `summary.json`. Network steps go through the node's event loop
//! ([`crate::compare::ops::Handle`]); the passes run on blocking threads. Errors are
//! [`CycleError`]s.

use crate::compare::commit::{Committed, statement};
use crate::compare::error::CycleError;
use crate::compare::files::{sha256_of, write_coverage, write_verified};
use crate::compare::jobs::{Compiled, DiscloseSpec, MinistrySpec};
use crate::compare::ops::{Disclosed as Answered, Handle, MinistryAsk};
use crate::compare::pass::{Input, PassOutput, run_pass};
use crate::compare::rows::{Persons, RowSort, add_batch, write_csv_with};
use crate::compare::summary::{CoverageRow, InputSummary, MinistrySummary, ResultSummary, Summary};
use crate::pull::pulls::FeedReader;
use dxmesh_protocol::agreement::{Refusal, Terms};
use dxmesh_protocol::audit::Event;
use dxmesh_protocol::commitment::{LeafTree, MinistryBasis, ResultCommitment};
use dxmesh_protocol::feed::{DisclosureReceipt, MinistryAnswer};
use dxmesh_protocol::id::IdNumber;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::token::IdToken;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Tokens per disclosure request and IDs per ministry query.
const BATCH: usize = 100_000;

/// One input bound to its agreement.
#[derive(Clone)]
pub struct Binding {
    /// The input's name in the job file.
    pub name: String,
    /// The agreement the input is pulled under.
    pub terms: Terms,
}

/// Opens the pulled feed of every input.
fn open_inputs(
    data_dir: &Path,
    bindings: &[Binding],
    epoch: u64,
) -> Result<Vec<Input>, CycleError> {
    bindings
        .iter()
        .map(|b| {
            FeedReader::open(data_dir, &b.terms, epoch)
                .map(|reader| Input {
                    name: b.name.clone(),
                    reader,
                })
                .map_err(|source| CycleError::Input {
                    name: b.name.clone(),
                    source,
                })
        })
        .collect()
}

/// Runs a comparison pass on a blocking thread, with the tokens `other`
/// insured in another province.
async fn pass(
    data_dir: &Path,
    job: &Compiled,
    bindings: &[Binding],
    epoch: u64,
    other: Vec<IdToken>,
) -> Result<PassOutput, CycleError> {
    let (data_dir, job, bindings) = (data_dir.to_path_buf(), job.clone(), bindings.to_vec());
    tokio::task::spawn_blocking(move || {
        let inputs = open_inputs(&data_dir, &bindings, epoch)?;
        Ok(run_pass(&job, inputs, &other)?)
    })
    .await
    .map_err(CycleError::PassThread)?
}

/// A batch's disclosed (token, ID number) pairs and the provider's signed
/// receipt for them.
type Vouched = (Vec<(IdToken, IdNumber)>, Signed<DisclosureReceipt>);

use crate::compare::rows::Records;

/// Asks the provider of `terms` to disclose `fields` of `tokens` (sorted,
/// all in `committed`) in batches, each bound to the commitment, and hands
/// each batch's records to `each` as it comes (with the provider's receipt
/// for its ID numbers, if `id_number` was asked for); or the provider's
/// refusal.
async fn disclose_all(
    handle: &Handle,
    terms: &Terms,
    fields: &[String],
    tokens: &[IdToken],
    committed: &Committed,
    mut each: impl FnMut(Records, Option<Vouched>) -> Result<(), CycleError>,
) -> Result<Result<(), Refusal>, CycleError> {
    for batch in tokens.chunks(BATCH) {
        let request = committed.request(terms.id(), fields, batch)?;
        // The node takes an answer only if it is about exactly this request
        // (`disclose::answer::Awaited`): these fields of these tokens, under
        // this agreement, epoch and result kind.
        match handle.disclose(request).await? {
            Answered::Records(answer) => {
                let (d, receipt) = *answer;
                let vouched = receipt.map(|r| (dxmesh_protocol::feed::disclosed_id_pairs(&d), r));
                each(
                    d.records.into_iter().map(|r| (r.token, r.values)).collect(),
                    vouched,
                )?;
            }
            Answered::Refused(refusal) => return Ok(Err(refusal)),
        }
    }
    Ok(Ok(()))
}

/// Runs one comparison cycle of `job` for `epoch` and writes its results
/// under `out`; returns the text of `summary.json`.
///
/// The cycle goes through its stages in turn, each consuming the one
/// before: `Cycle::pull` -> `Pulled::check_ministry` -> `Checked::count`
/// -> `Counted::disclose_and_write` -> `Written::finish`.
pub async fn run_compare(
    handle: Handle,
    data_dir: PathBuf,
    job: Compiled,
    bindings: Vec<Binding>,
    ministry_terms: Option<Terms>,
    epoch: u64,
    to: Destination,
) -> Result<String, CycleError> {
    let cycle = Cycle {
        memory: to.memory,
        handle,
        data_dir,
        job,
        bindings,
        epoch,
        out: to.out,
        previous: to.previous,
        started: Instant::now(),
        timing: BTreeMap::new(),
    };
    cycle
        .pull()
        .await?
        .check_ministry(ministry_terms)
        .await?
        .count()
        .await?
        .disclose_and_write()
        .await?
        .finish()
        .await
}

/// Where a cycle writes its results, and the previous comparison's output
/// to list the changes against, if any.
pub struct Destination {
    /// The output folder.
    pub out: PathBuf,
    /// A previous comparison's output folder.
    pub previous: Option<PathBuf>,
    /// Bytes of memory the result files' sorts keep to.
    pub memory: usize,
}

/// What every stage of a cycle works with: the way to the node, the job
/// and its feeds, where the results go, and the clock.
struct Cycle {
    handle: Handle,
    data_dir: PathBuf,
    job: Compiled,
    bindings: Vec<Binding>,
    epoch: u64,
    out: PathBuf,
    previous: Option<PathBuf>,
    /// When the cycle started.
    started: Instant,
    /// Seconds per stage, for `summary.json`.
    timing: BTreeMap<String, f64>,
    /// Bytes of memory a sort of result rows keeps to.
    memory: usize,
}

impl Cycle {
    /// The input named `name`.
    fn binding(&self, name: &str) -> Option<&Binding> {
        self.bindings.iter().find(|b| b.name == name)
    }

    /// Notes the seconds since `since` as the time of `stage`.
    fn time(&mut self, stage: &str, since: Instant) {
        self.timing
            .insert(stage.to_string(), since.elapsed().as_secs_f64());
    }

    /// Signs, logs and keeps a commitment to result `kind`, whose sorted
    /// tokens are `tokens`, under the name `stem`; `as_kind` is the result
    /// kind it states (the agreed candidates job for the ministry
    /// candidates, else `kind`). A result whose expression reads
    /// `other_province` is computed with the ministry check's set and
    /// names its basis; any other states `other_province` empty.
    async fn commit(
        &self,
        (kind, as_kind, stem): (&str, &str, &str),
        tokens: &[IdToken],
        ministry: Option<&MinistryCheck>,
    ) -> Result<Committed, CycleError> {
        let manifest_of = |idx: usize| {
            let b = self.binding(&self.job.inputs.get(idx)?.0)?;
            crate::pull::pulls::stored_manifest(&self.data_dir, &b.terms.id(), self.epoch)
                .map(|m| m.digest())
        };
        let tree = LeafTree::of_tokens(tokens);
        let reads = self
            .job
            .agreed_job(kind)
            .is_some_and(|(j, _)| crate::compare::agreed::reads_other_province(&j.expr));
        let check = ministry.filter(|m| reads && m.basis.is_some());
        let other_province = check.map_or(&[][..], |m| &m.other_province[..]);
        let mut s = statement(
            &self.job,
            kind,
            self.epoch,
            manifest_of,
            other_province,
            &tree,
        )?;
        s.result_kind = as_kind.to_string();
        s.ministry = check.and_then(|m| m.basis.clone());
        let signed = self.handle.commit(s.clone()).await?;
        let manifests = crate::compare::commit::input_manifests(&self.data_dir, &s);
        let committed = Committed::new(signed, &s, tokens.to_vec(), tree)
            .with_manifests(manifests)
            .with_candidates(check.and_then(|m| m.candidates.clone()));
        committed.store_as(&self.data_dir, stem)?;
        Ok(committed)
    }

    /// Runs a comparison pass with these tokens insured elsewhere.
    async fn pass(&self, other_province: Vec<IdToken>) -> Result<PassOutput, CycleError> {
        pass(
            &self.data_dir,
            &self.job,
            &self.bindings,
            self.epoch,
            other_province,
        )
        .await
    }

    /// Stage 1: has every feed of the job pulled (resumed if
    /// interrupted), each once however many inputs read it, then makes
    /// the output folder (a cycle refused its feeds leaves none).
    async fn pull(mut self) -> Result<Pulled, CycleError> {
        let mut pulled = BTreeSet::new();
        for b in &self.bindings {
            if pulled.insert(b.terms.id()) {
                self.handle
                    .pull(b.terms.id(), self.epoch)
                    .await
                    .map_err(|source| CycleError::Pull {
                        name: b.name.clone(),
                        source,
                    })?;
            }
        }
        std::fs::create_dir_all(&self.out).map_err(|source| CycleError::Io {
            path: self.out.clone(),
            source,
        })?;
        let started = self.started;
        self.time("pull", started);
        Ok(Pulled {
            cx: self,
            since: Instant::now(),
        })
    }
}

/// After stage 1: every feed is held.
struct Pulled {
    cx: Cycle,
    /// When the pulls ended.
    since: Instant,
}

/// What the ministry check found: the tokens insured in another province
/// (for the second pass), its figures, and the candidates' disclosed
/// records. Empty if the job has no ministry check.
#[derive(Default)]
struct MinistryCheck {
    other_province: Vec<IdToken>,
    summary: Option<MinistrySummary>,
    disclosed: Disclosed,
    /// What `other_province` was made from (the candidates' commitment,
    /// the ministry's answers, the rule), for the results that read it.
    basis: Option<MinistryBasis>,
    /// The signed commitment to the candidates.
    candidates: Option<Signed<ResultCommitment>>,
}

/// The records disclosed for the ministry candidates, kept so that a
/// result disclosing the same fields of the same input reuses them rather
/// than asking again.
#[derive(Default)]
struct Disclosed {
    /// The input and fields the records are of (none: nothing disclosed).
    key: Option<(String, Vec<String>)>,
    /// Each token's records.
    rows: BTreeMap<IdToken, Vec<Vec<String>>>,
}

impl Disclosed {
    /// Whether these records are those of `fields` from `input`.
    fn serves(&self, input: &str, fields: &[String]) -> bool {
        self.key
            .as_ref()
            .is_some_and(|(i, f)| i == input && f == fields)
    }
}

impl Pulled {
    /// Stage 2, if the job has a ministry check and the node an agreement
    /// with the ministry: a first pass for the candidates, their disclosure
    /// and the ministry query ([`Cycle::ministry_check`]).
    async fn check_ministry(
        mut self,
        ministry_terms: Option<Terms>,
    ) -> Result<Checked, CycleError> {
        let check = match (self.cx.job.ministry.clone(), ministry_terms) {
            (Some(m), Some(terms)) => self.cx.ministry_check(&m, &terms, self.since).await?,
            _ => MinistryCheck::default(),
        };
        Ok(Checked { cx: self.cx, check })
    }
}

impl Cycle {
    /// The ministry check: the first pass (with `other_province` empty)
    /// finds the candidates; their provider discloses their ID numbers
    /// only, under the candidates' commitment; the ministry says which of
    /// those ID numbers are insured in another province.
    async fn ministry_check(
        &mut self,
        m: &MinistrySpec,
        ministry: &Terms,
        since: Instant,
    ) -> Result<MinistryCheck, CycleError> {
        let first = self.pass(Vec::new()).await?;
        self.time("pass_1", since);
        let src = self
            .binding(&m.id_source)
            .ok_or(CycleError::NotAnInput("ministry.id_source"))?;
        // Only the ID numbers: a candidate the ministry finds insured in
        // another province is no result, and nothing more of it is asked.
        let fields = vec!["id_number".to_string()];
        let stem = format!("{}.candidates", m.candidates);
        let kind = m.candidates_kind();
        let committed = self
            .commit((&m.candidates, &kind, &stem), &first.candidates, None)
            .await?;
        // Kept only if a result discloses the same fields of the same input
        // (and so reuses them rather than asking again).
        let reused = self.job.results.iter().any(|(_, _, d)| {
            d.as_ref()
                .is_some_and(|d| d.input == m.id_source && d.fields == fields)
        });
        let mut disclosed = Disclosed::default();
        let mut receipts = Vec::new();
        disclose_all(
            &self.handle,
            &src.terms,
            &fields,
            &first.candidates,
            &committed,
            |records, vouched| {
                receipts.extend(vouched);
                if reused {
                    for (tok, values) in records {
                        disclosed.rows.entry(tok).or_default().push(values);
                    }
                }
                Ok(())
            },
        )
        .await?
        .map_err(|refusal| CycleError::CandidatesRefused {
            code: refusal.code(),
            refusal,
        })?;
        if reused {
            disclosed.key = Some((m.id_source.clone(), fields));
        }
        let ids_queried: u64 = receipts.iter().map(|(p, _)| p.len() as u64).sum();
        let (found, elsewhere, answers) = self
            .ask_ministry(m, ministry, receipts, &committed.signed)
            .await?;
        let mut answer_digests = Vec::with_capacity(answers.len());
        for a in &answers {
            answer_digests.push(a.digest());
            crate::compare::commit::store_answer(&self.data_dir, self.epoch, a)?;
        }
        let other_province: Vec<IdToken> = elsewhere.into_iter().collect();
        crate::compare::commit::store_set(
            &self.data_dir,
            self.epoch,
            "other_province",
            &other_province,
        )?;
        let summary = MinistrySummary {
            candidates: first.candidates.len() as u64,
            ids_queried,
            found_in_national_index: found,
            removed_other_province: other_province.len() as u64,
        };
        self.time("ministry", since);
        let basis = MinistryBasis {
            candidates: committed.signed.digest(),
            answers: answer_digests,
            home_province: m.home_province.clone(),
            insurance_types: m.insurance_types.clone(),
        };
        Ok(MinistryCheck {
            other_province,
            summary: Some(summary),
            disclosed,
            basis: Some(basis),
            candidates: Some(committed.signed),
        })
    }

    /// Asks the ministry about the candidates' ID numbers, a query per
    /// disclosed batch, each with the registry provider's receipt for it;
    /// returns how many it found, the tokens of those insured, with one of
    /// the job's insurance types, in a province other than this one, and
    /// the ministry's signed answers.
    async fn ask_ministry(
        &self,
        m: &MinistrySpec,
        ministry: &Terms,
        batches: Vec<Vouched>,
        commitment: &Signed<ResultCommitment>,
    ) -> Result<(u64, BTreeSet<IdToken>, Vec<Signed<MinistryAnswer>>), CycleError> {
        let fields = vec!["province_code".to_string(), "insurance_type".to_string()];
        let mut found = 0u64;
        let mut elsewhere = BTreeSet::new();
        let mut answers = Vec::new();
        for (ids, receipt) in batches {
            let (sent, receipt_digest) = (commitment.digest(), receipt.digest());
            let mut asked: Vec<IdToken> = ids.iter().map(|(t, _)| *t).collect();
            asked.sort();
            let answer = self
                .handle
                .ministry(MinistryAsk {
                    agreement: ministry.id(),
                    epoch: self.epoch,
                    fields: fields.clone(),
                    ids,
                    commitment: commitment.clone(),
                    receipt,
                })
                .await?;
            let (signed, a) = *answer;
            let query = dxmesh_protocol::feed::MinistryAsked {
                agreement: ministry.id(),
                epoch: self.epoch,
                commitment: sent,
                receipt: receipt_digest,
                fields: &fields,
                tokens: &asked,
            };
            a.answers(&query).map_err(CycleError::OtherAnswer)?;
            answers.push(signed);
            found += a.found.len() as u64;
            elsewhere.extend(
                a.found
                    .iter()
                    .filter(|(_, values)| insured_elsewhere(m, values))
                    .map(|(t, _)| *t),
            );
        }
        Ok((found, elsewhere, answers))
    }
}

/// Whether a ministry answer's values (`province_code`, `insurance_type`)
/// say insured, with one of the job's insurance types, in another province.
pub fn insured_elsewhere(m: &MinistrySpec, values: &[String]) -> bool {
    let province = values.first().map(String::as_str).unwrap_or("");
    let kind = values.get(1).map(String::as_str).unwrap_or("");
    province != m.home_province && m.insurance_types.iter().any(|t| t == kind)
}

/// After stage 2: the ministry's answer, if any.
struct Checked {
    cx: Cycle,
    check: MinistryCheck,
}

impl Checked {
    /// Stage 3: the pass that counts, with the tokens insured in another
    /// province.
    async fn count(mut self) -> Result<Counted, CycleError> {
        let t = Instant::now();
        let other_province = self.check.other_province.clone();
        let result = self.cx.pass(other_province).await?;
        self.cx.time("pass", t);
        Ok(Counted {
            cx: self.cx,
            check: self.check,
            result,
        })
    }
}

/// After stage 3: the results.
struct Counted {
    cx: Cycle,
    check: MinistryCheck,
    result: PassOutput,
}

impl Counted {
    /// Stage 4: the disclosures each result allows and the files: one CSV
    /// per result, `verified_registrations.csv` (the findings the province
    /// uploads to the ministry) and, if the job counts it, `coverage.csv`.
    async fn disclose_and_write(mut self) -> Result<Written, CycleError> {
        let t = Instant::now();
        let mut results = BTreeMap::new();
        for j in 0..self.cx.job.results.len() {
            let (name, summary) = self.write_result(j).await?;
            results.insert(name, summary);
        }
        write_verified(&self.cx.out, &results, &self.cx.data_dir, self.cx.memory)?;
        if self.cx.job.coverage.is_some() {
            write_coverage(&self.cx.out, &self.result.coverage)?;
        }
        self.cx.time("disclose_and_write", t);
        let started = self.cx.started;
        self.cx.time("total", started);
        Ok(Written {
            cx: self.cx,
            ministry: self.check.summary,
            result: self.result,
            results,
        })
    }

    /// Commits to result `j`, then writes its file: its disclosed records,
    /// or its tokens if it discloses nothing. A result whose disclosure the
    /// provider refuses gets no file; its summary names the refusal.
    async fn write_result(&self, j: usize) -> Result<(String, ResultSummary), CycleError> {
        let (name, _, disclose) = &self.cx.job.results[j];
        let tokens = &self.result.results[j];
        let committed = self
            .cx
            .commit((name, name, name), tokens, Some(&self.check))
            .await?;
        let file = self.cx.out.join(format!("{name}.csv"));
        let mut summary = ResultSummary {
            count: tokens.len() as u64,
            disclosed_records: 0,
            persons_disclosed: 0,
            persons_with_several_rows: 0,
            file: file.display().to_string(),
            refused: None,
        };
        match disclose {
            Some(d) => match self.disclosed_rows(d, tokens, &committed).await? {
                Ok((rows, persons)) => {
                    summary.persons_disclosed = persons.persons;
                    summary.persons_with_several_rows = persons.several;
                    summary.disclosed_records =
                        rows.write_csv(&file, &d.fields, 0..d.fields.len())?;
                }
                Err(refusal) => {
                    tracing::warn!(result = %name, code = refusal.code(), %refusal, "the provider refused to disclose this result; no records are written for it");
                    summary.file = String::new();
                    summary.refused = Some(refusal.code().to_string());
                }
            },
            None => write_csv_with(&file, &["token".to_string()], |w| {
                for t in tokens {
                    w.write_record([t.to_string()])
                        .map_err(|source| CycleError::Csv {
                            path: file.clone(),
                            source,
                        })?;
                }
                Ok(())
            })?,
        }
        Ok((name.clone(), summary))
    }

    /// The records disclosed for a result's tokens, each with its
    /// person's token, sorted by values (in the node's memory budget) and
    /// each once, with who they are of: those the ministry check disclosed
    /// already, and the rest asked of the provider under the result's
    /// commitment; or the provider's refusal.
    async fn disclosed_rows(
        &self,
        d: &DiscloseSpec,
        tokens: &[IdToken],
        committed: &Committed,
    ) -> Result<Result<(RowSort, Persons), Refusal>, CycleError> {
        let b = self
            .cx
            .binding(&d.input)
            .ok_or(CycleError::NotAnInput("disclose.input"))?;
        let cache = &self.check.disclosed;
        let reuse = cache.serves(&d.input, &d.fields);
        let mut rows = RowSort::new(&self.cx.data_dir, self.cx.memory)?;
        let width = d.fields.len();
        let mut persons = Persons::default();
        let mut known = Vec::new();
        let mut ask = Vec::new();
        for t in tokens {
            match (reuse, cache.rows.get(t)) {
                (true, Some(rs)) => known.extend(rs.iter().map(|r| (*t, r.clone()))),
                _ => ask.push(*t),
            }
            if known.len() >= BATCH {
                add_batch((&mut rows, width), &mut persons, std::mem::take(&mut known))?;
            }
        }
        add_batch((&mut rows, width), &mut persons, known)?;
        if !ask.is_empty() {
            let asked = disclose_all(
                &self.cx.handle,
                &b.terms,
                &d.fields,
                &ask,
                committed,
                |records, _| add_batch((&mut rows, width), &mut persons, records),
            )
            .await?;
            if let Err(refusal) = asked {
                return Ok(Err(refusal));
            }
        }
        Ok(Ok((rows, persons)))
    }
}

/// After stage 4: the result files are written.
struct Written {
    cx: Cycle,
    ministry: Option<MinistrySummary>,
    result: PassOutput,
    results: BTreeMap<String, ResultSummary>,
}

impl Written {
    /// Stage 5: the summary, the `JobRun` audit event (the inputs' manifest
    /// digests and each result file's hash), then `summary.json`; returns
    /// its text.
    async fn finish(mut self) -> Result<String, CycleError> {
        let (inputs, reference_date) = self.input_summaries()?;
        let changes = match &self.cx.previous {
            Some(previous) => {
                let names: Vec<String> = self.results.keys().cloned().collect();
                Some(crate::compare::changes::between(
                    previous,
                    &self.cx.out,
                    &names,
                    (&self.cx.data_dir, self.cx.memory),
                )?)
            }
            None => None,
        };
        let summary = Summary {
            epoch: self.cx.epoch,
            reference_date,
            results: std::mem::take(&mut self.results),
            inputs,
            coverage: CoverageRow::table(&self.result.coverage),
            ministry: self.ministry.take(),
            timing_secs: std::mem::take(&mut self.cx.timing),
            distinct_tokens_merged: self.result.distinct_tokens,
            changes,
        };
        self.cx.handle.log(self.job_run(&summary)).await?;
        let text = serde_json::to_string_pretty(&summary)?;
        let path = self.cx.out.join("summary.json");
        crate::base::fsutil::write_atomic(&path, text.as_bytes(), 0o600)
            .map_err(|source| CycleError::Io { path, source })?;
        Ok(text)
    }

    /// Each input's feed and what the pass read of it; and the feeds'
    /// reference date.
    fn input_summaries(&self) -> Result<(BTreeMap<String, InputSummary>, String), CycleError> {
        let cx = &self.cx;
        let mut inputs = BTreeMap::new();
        let mut reference_date = String::new();
        for (i, b) in cx.bindings.iter().enumerate() {
            let reader =
                FeedReader::open(&cx.data_dir, &b.terms, cx.epoch).map_err(CycleError::Feed)?;
            let m = reader.manifest();
            reference_date = m.reference_date.to_string();
            let summary = InputSummary {
                agreement: dxmesh_protocol::hex(&b.terms.id()),
                provider: b.terms.provider.peer_id().to_string(),
                dataset: b.terms.dataset.clone(),
                records_read: self.result.records[i],
                ids_in_input: self.result.members[i],
                manifest_root: dxmesh_protocol::hex(&m.root),
                manifest_records: m.records,
                manifest_chunks: m.chunks(),
            };
            inputs.insert(b.name.clone(), summary);
        }
        Ok((inputs, reference_date))
    }

    /// The `JobRun` audit event of this cycle.
    fn job_run(&self, summary: &Summary) -> Event {
        let cx = &self.cx;
        Event::JobRun {
            epoch: cx.epoch,
            inputs: cx
                .bindings
                .iter()
                .filter_map(|b| {
                    crate::pull::pulls::stored_manifest(&cx.data_dir, &b.terms.id(), cx.epoch)
                        .map(|m| (b.name.clone(), m.digest()))
                })
                .collect(),
            results: summary
                .results
                .iter()
                .map(|(n, r)| (n.clone(), r.count, sha256_of(&r.file)))
                .collect(),
        }
    }
}
