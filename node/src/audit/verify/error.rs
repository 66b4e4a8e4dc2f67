//! Why an evidence bundle could not be loaded at all: a file that cannot be
//! read, or one whose contents do not parse. Such a bundle is reported as a
//! single failure naming its path; everything else the verifier finds is a
//! finding in the report, not an error. The messages are the report's text.

use crate::audit::log::FramingError;
use dxmesh_protocol::codec::CodecError;
use dxmesh_protocol::identity::KeyError;
use std::path::PathBuf;

/// Why a bundle could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// A file of the bundle could not be read.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// A file of the bundle was read but its contents do not parse.
    #[error("{file}: {problem}", file = .file.display())]
    Malformed {
        /// The file, as the report names it (`node.json`, or a full path).
        file: PathBuf,
        /// What is wrong with it.
        #[source]
        problem: FileProblem,
    },
    /// `entries.bin` does not split into entries.
    #[error(transparent)]
    Framing(#[from] FramingError),
}

/// What is wrong inside a bundle file that was read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileProblem {
    /// Not the JSON expected (`node.json`).
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// Not a public key (`anchor.pub.pem`).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Not the binary encoding expected (roster versions, transcripts).
    #[error(transparent)]
    Decode(#[from] CodecError),
    /// `node.json` names a PeerId that is not an Ed25519 key.
    #[error("not an Ed25519 PeerId")]
    NotEd25519PeerId,
    /// An entry of `entries.bin` does not decode.
    #[error("entry at position {position} does not decode: {source}")]
    Entry {
        /// Its position in the file.
        position: usize,
        /// The decoder's complaint.
        source: CodecError,
    },
}

impl BundleError {
    /// `problem` found in `file`.
    pub(super) fn malformed(file: impl Into<PathBuf>, problem: impl Into<FileProblem>) -> Self {
        BundleError::Malformed {
            file: file.into(),
            problem: problem.into(),
        }
    }
}
