//! Known-answer tests for the RFC 6962 / RFC 9162 proof verifiers: every case
//! of the transparency-dev/merkle test data (copied, with its README and
//! LICENSE, under `tests/vectors/rfc6962/`) is fed to
//! `merkle::verify_inclusion` or `merkle::verify_consistency`, which must
//! accept it exactly when the case says `wantErr: false`. All failures are
//! collected and reported together, and the test refuses to pass if it found
//! fewer cases than the data set holds.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use dxmesh_protocol::merkle::{verify_consistency, verify_inclusion};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The copied data set has 196 cases; allow a few to be dropped, not all.
const MIN_CASES: usize = 190;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/rfc6962")
}

/// Every `*.json` file under `dir`, recursively, in a stable order.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).unwrap_or_else(|e| panic!("cannot read {}: {e}", d.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn b64(v: &Value, field: &str) -> Result<Vec<u8>, String> {
    match &v[field] {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => B64
            .decode(s)
            .map_err(|e| format!("field {field}: bad base64: {e}")),
        other => Err(format!("field {field}: expected a string, got {other}")),
    }
}

fn b64_list(v: &Value, field: &str) -> Result<Vec<Vec<u8>>, String> {
    match &v[field] {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => B64
                    .decode(s)
                    .map_err(|e| format!("field {field}: bad base64: {e}")),
                other => Err(format!("field {field}: expected strings, got {other}")),
            })
            .collect(),
        other => Err(format!("field {field}: expected an array, got {other}")),
    }
}

fn u64_field(v: &Value, field: &str) -> Result<u64, String> {
    v[field]
        .as_u64()
        .ok_or_else(|| format!("field {field}: expected an unsigned integer"))
}

fn want_err(v: &Value) -> Result<bool, String> {
    v["wantErr"]
        .as_bool()
        .ok_or_else(|| "field wantErr: expected a boolean".to_string())
}

fn load(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))
}

/// Runs one inclusion case; `Ok(None)` when the verifier agreed with `wantErr`.
fn inclusion_case(v: &Value) -> Result<Option<String>, String> {
    let index = u64_field(v, "leafIdx")?;
    let size = u64_field(v, "treeSize")?;
    let root = b64(v, "root")?;
    let leaf = b64(v, "leafHash")?;
    let proof = b64_list(v, "proof")?;
    let want_err = want_err(v)?;
    let got = verify_inclusion(&leaf, index, size, &proof, &root);
    Ok(match (got, want_err) {
        (Ok(()), false) | (Err(_), true) => None,
        (Ok(()), true) => Some("accepted, but wantErr is true".to_string()),
        (Err(e), false) => Some(format!("rejected ({e}), but wantErr is false")),
    })
}

/// Runs one consistency case; `Ok(None)` when the verifier agreed with `wantErr`.
fn consistency_case(v: &Value) -> Result<Option<String>, String> {
    let size1 = u64_field(v, "size1")?;
    let size2 = u64_field(v, "size2")?;
    let root1 = b64(v, "root1")?;
    let root2 = b64(v, "root2")?;
    let proof = b64_list(v, "proof")?;
    let want_err = want_err(v)?;
    let got = verify_consistency(size1, size2, &proof, &root1, &root2);
    Ok(match (got, want_err) {
        (Ok(()), false) | (Err(_), true) => None,
        (Ok(()), true) => Some("accepted, but wantErr is true".to_string()),
        (Err(e), false) => Some(format!("rejected ({e}), but wantErr is false")),
    })
}

type Case = fn(&Value) -> Result<Option<String>, String>;

#[test]
fn every_transparency_dev_vector_is_decided_correctly() {
    let base = vectors_dir();
    let kinds: [(&str, Case); 2] = [
        ("inclusion", inclusion_case),
        ("consistency", consistency_case),
    ];
    let mut failures = Vec::new();
    let mut run = 0usize;
    for (kind, case) in kinds {
        let files = json_files(&base.join(kind));
        assert!(
            !files.is_empty(),
            "no {kind} vectors under {}",
            base.display()
        );
        for path in files {
            run += 1;
            let result = load(&path).and_then(|v| {
                let desc = v["desc"].as_str().unwrap_or("").to_string();
                case(&v).map(|r| r.map(|msg| format!("{msg} [{desc}]")))
            });
            match result {
                Ok(None) => {}
                Ok(Some(msg)) => failures.push(format!("{}: {msg}", path.display())),
                Err(msg) => failures.push(format!("{}: bad test file: {msg}", path.display())),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {run} RFC 6962 vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        run >= MIN_CASES,
        "only {run} RFC 6962 vectors found under {}, expected at least {MIN_CASES}",
        base.display()
    );
    eprintln!("{run} RFC 6962 vectors passed");
}
