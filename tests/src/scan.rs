//! [`scan_for`]: searches a directory tree for bytes that must not be there.

use std::path::{Path, PathBuf};

/// Every file under `dir` whose bytes contain any of `needles`: (file, needle).
pub fn scan_for(dir: &Path, needles: &[String]) -> Vec<(PathBuf, String)> {
    let ac = aho_corasick::AhoCorasick::new(needles.iter().filter(|n| !n.is_empty()))
        .expect("automaton");
    let needles: Vec<&String> = needles.iter().filter(|n| !n.is_empty()).collect();
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                for m in ac.find_overlapping_iter(&bytes) {
                    hits.push((p.clone(), needles[m.pattern().as_usize()].clone()));
                }
            }
        }
    }
    hits
}
