//! The comparator's result commitments: the statement of one result
//! ([`statement`]), a signed commitment with its sorted tokens
//! ([`Committed`]), the disclosure requests it backs (each token with its
//! leaf index and one multi-leaf proof per batch), and where a node keeps
//! them so that `dxmesh disclose` can ask for more of a committed result
//! later: `DATA_DIR/commitments/<epoch>/<kind>.commitment` (the signed
//! commitment) and `<kind>.tokens` (the sorted result tokens, 16 bytes
//! each), both written atomically. The ministry candidates' commitment is
//! kept as `<kind>.candidates`, beside the result's; and every commitment
//! ever signed is kept by its digest under `all/`, never replaced (what a
//! bundle exports and an auditor recomputes). A request carries the
//! signed manifests of the commitment's inputs ([`input_manifests`]), read
//! from the node's pulled feeds.

use crate::base::fsutil::write_atomic;
use crate::compare::jobs::Compiled;
use dxmesh_protocol::agreement::AgreementId;
use dxmesh_protocol::codec;
use dxmesh_protocol::commitment::{
    CommittedInput, CommittedSet, LeafTree, ResultCommitment, set_root,
};
use dxmesh_protocol::feed::Manifest;
use dxmesh_protocol::hash::Hash;
use dxmesh_protocol::signed::Signed;
use dxmesh_protocol::token::IdToken;
use dxmesh_protocol::wire::DisclosureRequest;
use std::path::{Path, PathBuf};

/// Why a commitment could not be made, kept or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// The job has no result of that kind.
    #[error("the job has no result {0:?}")]
    UnknownResult(String),
    /// An input's feed has no stored manifest for the epoch.
    #[error("input {input:?} has no pulled manifest for epoch {epoch}")]
    NoManifest {
        /// The input.
        input: String,
        /// The epoch.
        epoch: u64,
    },
    /// A token asked for is not in the committed result.
    #[error("token {token} is not in the committed result {kind:?} of epoch {epoch}")]
    NotCommitted {
        /// The token.
        token: IdToken,
        /// The result kind.
        kind: String,
        /// The epoch.
        epoch: u64,
    },
    /// A stored commitment could not be read or written.
    #[error("{path}: {problem}", path = .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        problem: String,
    },
}

/// What the comparator states about result `kind` of `job` for `epoch`:
/// its agreed expression, the manifest of each input it reads (from
/// `manifest_of`, by input index), `other_province` and the result's
/// tokens (their tree).
pub fn statement(
    job: &Compiled,
    kind: &str,
    epoch: u64,
    manifest_of: impl Fn(usize) -> Option<Hash>,
    other_province: &[IdToken],
    tokens: &LeafTree,
) -> Result<ResultCommitment, CommitError> {
    let (agreed, inputs) = job
        .agreed_job(kind)
        .ok_or_else(|| CommitError::UnknownResult(kind.to_string()))?;
    let inputs = inputs
        .into_iter()
        .map(|(idx, input)| {
            let manifest = manifest_of(idx).ok_or_else(|| CommitError::NoManifest {
                input: input.name.clone(),
                epoch,
            })?;
            Ok(CommittedInput { input, manifest })
        })
        .collect::<Result<Vec<_>, CommitError>>()?;
    let (op_count, op_root) = set_root(other_province);
    let (count, root) = (tokens.size(), tokens.root());
    Ok(ResultCommitment {
        epoch,
        result_kind: kind.to_string(),
        expr: agreed.expr,
        inputs,
        sets: vec![CommittedSet {
            name: "other_province".into(),
            count: op_count,
            root: op_root,
        }],
        count,
        root,
        ministry: None,
    })
}

/// The signed manifests of the feeds a commitment's inputs read, from the
/// node's pulled feeds (`pulls/<agreement>/<epoch>/manifest.bin`), each
/// once; an input whose manifest is no longer held (erased under
/// retention) has none, and a provider refuses a request without it.
pub fn input_manifests(data_dir: &Path, statement: &ResultCommitment) -> Vec<Signed<Manifest>> {
    let mut wanted: Vec<Hash> = statement.inputs.iter().map(|i| i.manifest).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut found: Vec<Signed<Manifest>> = Vec::new();
    let Ok(agreements) = std::fs::read_dir(data_dir.join(crate::base::layout::PULLS)) else {
        return found;
    };
    for a in agreements.flatten() {
        let path = a
            .path()
            .join(statement.epoch.to_string())
            .join(crate::base::layout::MANIFEST_FILE);
        let Some(m) = std::fs::read(&path)
            .ok()
            .and_then(|b| codec::decode::<Signed<Manifest>>(&b).ok())
        else {
            continue;
        };
        let d = m.digest();
        if wanted.binary_search(&d).is_ok() && !found.iter().any(|f| f.digest() == d) {
            found.push(m);
        }
    }
    found.sort_by_key(|m| m.digest());
    found
}

/// A signed commitment and the sorted tokens of its result.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The commitment as signed.
    pub signed: Signed<ResultCommitment>,
    /// The result's tokens, sorted.
    pub tokens: Vec<IdToken>,
    /// The signed manifests of its inputs (every request carries them).
    pub manifests: Vec<Signed<Manifest>>,
    /// The commitment to the candidates its ministry basis names, if any
    /// (every request carries it).
    pub candidates: Option<Signed<ResultCommitment>>,
    /// Their Merkle tree (every request's proof comes from it).
    tree: LeafTree,
    /// The commitment's epoch and kind.
    epoch: u64,
    kind: String,
}

impl Committed {
    /// A signed commitment to `statement`, whose tokens are `tokens` with
    /// the tree `tree`.
    pub fn new(
        signed: Signed<ResultCommitment>,
        statement: &ResultCommitment,
        tokens: Vec<IdToken>,
        tree: LeafTree,
    ) -> Committed {
        Committed {
            signed,
            tree,
            tokens,
            manifests: Vec::new(),
            candidates: None,
            epoch: statement.epoch,
            kind: statement.result_kind.clone(),
        }
    }

    /// The same, with the signed manifests of its inputs.
    pub fn with_manifests(mut self, manifests: Vec<Signed<Manifest>>) -> Committed {
        self.manifests = manifests;
        self
    }

    /// The same, with the commitment to the candidates its ministry basis
    /// names.
    pub fn with_candidates(mut self, candidates: Option<Signed<ResultCommitment>>) -> Committed {
        self.candidates = candidates;
        self
    }

    /// The request to disclose `fields` of `batch` (sorted tokens of the
    /// result) under `agreement`.
    pub fn request(
        &self,
        agreement: AgreementId,
        fields: &[String],
        batch: &[IdToken],
    ) -> Result<DisclosureRequest, CommitError> {
        let indices = batch
            .iter()
            .map(|t| {
                self.tokens.binary_search(t).map(|i| i as u64).map_err(|_| {
                    CommitError::NotCommitted {
                        token: *t,
                        kind: self.kind.clone(),
                        epoch: self.epoch,
                    }
                })
            })
            .collect::<Result<Vec<u64>, _>>()?;
        let proof = self
            .tree
            .prove(&indices)
            .map_err(|_| CommitError::NotCommitted {
                token: batch.first().copied().unwrap_or(IdToken([0; 16])),
                kind: self.kind.clone(),
                epoch: self.epoch,
            })?;
        Ok(DisclosureRequest {
            agreement,
            epoch: self.epoch,
            result_kind: self.kind.clone(),
            fields: fields.to_vec(),
            tokens: batch.to_vec(),
            commitment: self.signed.clone(),
            indices,
            proof,
            manifests: self.manifests.clone(),
            candidates: self.candidates.clone().map(Box::new),
        })
    }

    /// Keeps the commitment and its tokens under `data_dir`, as the
    /// commitment of its kind (the one `dxmesh disclose` uses).
    pub fn store(&self, data_dir: &Path) -> Result<(), CommitError> {
        self.store_as(data_dir, &self.kind)
    }

    /// Keeps the commitment and its tokens under `data_dir` by the name
    /// `stem` (the ministry candidates keep `<kind>.candidates`, so the
    /// result's commitment does not replace them).
    pub fn store_as(&self, data_dir: &Path, stem: &str) -> Result<(), CommitError> {
        let (c, t) = paths(data_dir, self.epoch, stem);
        let failed = |path: &Path, e: String| CommitError::File {
            path: path.to_path_buf(),
            problem: e,
        };
        let dir = c.parent().unwrap_or(data_dir);
        std::fs::create_dir_all(dir).map_err(|e| failed(dir, e.to_string()))?;
        let tokens: Vec<u8> = self.tokens.iter().flat_map(|t| t.0).collect();
        write_atomic(&t, &tokens, 0o600).map_err(|e| failed(&t, e.to_string()))?;
        let bytes = codec::encode(&self.signed).map_err(|e| failed(&c, e.to_string()))?;
        // Every commitment signed is kept by its digest, never replaced:
        // the evidence of what was disclosed under it.
        let all = dir.join(ALL);
        std::fs::create_dir_all(&all).map_err(|e| failed(&all, e.to_string()))?;
        let kept = all.join(format!(
            "{}.commitment",
            dxmesh_protocol::hex(&self.signed.digest())
        ));
        write_atomic(&kept, &bytes, 0o600).map_err(|e| failed(&kept, e.to_string()))?;
        write_atomic(&c, &bytes, 0o600).map_err(|e| failed(&c, e.to_string()))
    }

    /// The commitment kept for `kind` of `epoch` (or by another name, see
    /// [`Committed::store_as`]), if any.
    pub fn load(data_dir: &Path, epoch: u64, kind: &str) -> Result<Option<Committed>, CommitError> {
        let (c, t) = paths(data_dir, epoch, kind);
        let bytes = match std::fs::read(&c) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(CommitError::File {
                    path: c,
                    problem: e.to_string(),
                });
            }
        };
        let bad = |path: &Path, problem: String| CommitError::File {
            path: path.to_path_buf(),
            problem,
        };
        let signed: Signed<ResultCommitment> =
            codec::decode(&bytes).map_err(|e| bad(&c, e.to_string()))?;
        let statement: ResultCommitment =
            codec::decode(signed.body()).map_err(|e| bad(&c, e.to_string()))?;
        let raw = std::fs::read(&t).map_err(|e| bad(&t, e.to_string()))?;
        if raw.len() % 16 != 0 {
            return Err(bad(&t, "not a whole number of 16-byte tokens".into()));
        }
        let tokens: Vec<IdToken> = raw
            .chunks_exact(16)
            .map(|c| IdToken(c.try_into().unwrap_or([0; 16])))
            .collect();
        let tree = LeafTree::of_tokens(&tokens);
        if (tree.size(), tree.root()) != (statement.count, statement.root) {
            return Err(bad(&t, "the tokens are not those of the commitment".into()));
        }
        let manifests = input_manifests(data_dir, &statement);
        let candidates = match &statement.ministry {
            Some(basis) => kept_commitment(data_dir, epoch, &basis.candidates)?,
            None => None,
        };
        Ok(Some(
            Committed::new(signed, &statement, tokens, tree)
                .with_manifests(manifests)
                .with_candidates(candidates),
        ))
    }
}

/// Keeps a signed ministry answer of `epoch` by its digest
/// (`commitments/<epoch>/answers/<digest>.answer`): the evidence of the
/// `other_province` set a ministry basis names.
pub fn store_answer(
    data_dir: &Path,
    epoch: u64,
    answer: &Signed<dxmesh_protocol::feed::MinistryAnswer>,
) -> Result<(), CommitError> {
    let dir = epoch_dir(data_dir, epoch).join(ANSWERS);
    let path = dir.join(format!("{}.answer", dxmesh_protocol::hex(&answer.digest())));
    let failed = |path: &Path, problem: String| CommitError::File {
        path: path.to_path_buf(),
        problem,
    };
    std::fs::create_dir_all(&dir).map_err(|e| failed(&dir, e.to_string()))?;
    let bytes = codec::encode(answer).map_err(|e| failed(&path, e.to_string()))?;
    write_atomic(&path, &bytes, 0o600).map_err(|e| failed(&path, e.to_string()))
}

/// The folder of `epoch`'s commitments: `commitments/<epoch>/`.
pub fn epoch_dir(data_dir: &Path, epoch: u64) -> PathBuf {
    data_dir
        .join(crate::base::layout::COMMITMENTS)
        .join(epoch.to_string())
}

/// The folder (under an epoch's) of the ministry's signed answers.
pub const ANSWERS: &str = "answers";

/// The commitment of `epoch` with this digest, kept under `all/`, if any.
pub fn kept_commitment(
    data_dir: &Path,
    epoch: u64,
    digest: &Hash,
) -> Result<Option<Signed<ResultCommitment>>, CommitError> {
    let path = epoch_dir(data_dir, epoch)
        .join(ALL)
        .join(format!("{}.commitment", dxmesh_protocol::hex(digest)));
    match std::fs::read(&path) {
        Ok(b) => codec::decode(&b).map(Some).map_err(|e| CommitError::File {
            path,
            problem: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CommitError::File {
            path,
            problem: e.to_string(),
        }),
    }
}

/// Keeps the sorted tokens of the set `name` the epoch's results were
/// computed with (`other_province`), for an offline recompute.
pub fn store_set(
    data_dir: &Path,
    epoch: u64,
    name: &str,
    tokens: &[IdToken],
) -> Result<(), CommitError> {
    let (_, path) = paths(data_dir, epoch, name);
    let failed = |e: String| CommitError::File {
        path: path.clone(),
        problem: e,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
    }
    let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.0).collect();
    write_atomic(&path, &bytes, 0o600).map_err(|e| failed(e.to_string()))
}

/// The sorted tokens of the set `name` kept for `epoch`, if any.
pub fn load_set(
    data_dir: &Path,
    epoch: u64,
    name: &str,
) -> Result<Option<Vec<IdToken>>, CommitError> {
    let (_, path) = paths(data_dir, epoch, name);
    match std::fs::read(&path) {
        Ok(raw) if raw.len() % 16 == 0 => Ok(Some(
            raw.chunks_exact(16)
                .map(|c| IdToken(c.try_into().unwrap_or([0; 16])))
                .collect(),
        )),
        Ok(_) => Err(CommitError::File {
            path,
            problem: "not a whole number of 16-byte tokens".into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CommitError::File {
            path,
            problem: e.to_string(),
        }),
    }
}

/// Erases the token files (`*.tokens`) of `epoch`'s commitments once the
/// feeds they were computed from are erased: the signed commitments, the
/// ministry's answers and `all/` stay as evidence. Returns how many files
/// went.
pub fn erase_tokens(data_dir: &Path, epoch: u64) -> std::io::Result<u32> {
    let dir = epoch_dir(data_dir, epoch);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut erased = 0;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|x| x == "tokens") {
            std::fs::remove_file(&path)?;
            erased += 1;
        }
    }
    Ok(erased)
}

/// The folder (under an epoch's) of every commitment signed, by digest.
pub const ALL: &str = "all";

/// The commitment and tokens files of `kind` of `epoch`.
fn paths(data_dir: &Path, epoch: u64, kind: &str) -> (PathBuf, PathBuf) {
    let dir = epoch_dir(data_dir, epoch);
    (
        dir.join(format!("{kind}.commitment")),
        dir.join(format!("{kind}.tokens")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use dxmesh_protocol::commitment::token_leaves;
    use dxmesh_protocol::identity::Identity;

    #[test]
    fn a_kept_commitment_comes_back_and_backs_requests_for_its_tokens_only() {
        let dir = tempfile::tempdir().unwrap();
        let tokens: Vec<IdToken> = (1..=50u8).map(|k| IdToken([k; 16])).collect();
        let (count, root) = set_root(&tokens);
        let statement = ResultCommitment {
            epoch: 3,
            result_kind: "uninsured".into(),
            expr: "registry".into(),
            inputs: vec![],
            sets: vec![],
            count,
            root,
            ministry: None,
        };
        let id = Identity::from_seed([4; 32]).unwrap();
        let signed = Signed::sign(&id, &statement).unwrap();
        let c = Committed::new(
            signed,
            &statement,
            tokens.clone(),
            LeafTree::of_tokens(&tokens),
        );
        c.store(dir.path()).unwrap();
        let back = Committed::load(dir.path(), 3, "uninsured")
            .unwrap()
            .unwrap();
        assert_eq!(back.tokens, tokens);
        assert!(
            Committed::load(dir.path(), 4, "uninsured")
                .unwrap()
                .is_none()
        );
        let fields = vec!["id_number".to_string()];
        let r = back.request([1; 32], &fields, &tokens[10..20]).unwrap();
        assert_eq!(r.indices, (10..20).collect::<Vec<u64>>());
        let items: Vec<(u64, Hash)> = r
            .indices
            .iter()
            .copied()
            .zip(token_leaves(&r.tokens))
            .collect();
        r.proof.verify(count, &items, &root).unwrap();
        let e = back
            .request([1; 32], &fields, &[IdToken([99; 16])])
            .unwrap_err();
        assert!(matches!(e, CommitError::NotCommitted { .. }), "{e}");
        // Tokens that do not match the commitment are refused on load.
        std::fs::write(dir.path().join("commitments/3/uninsured.tokens"), [0u8; 32]).unwrap();
        assert!(Committed::load(dir.path(), 3, "uninsured").is_err());
    }
}
