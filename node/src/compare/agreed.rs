//! Jobs as agreements state them: the canonical text of a result's
//! expression (earlier results written out, every operation in brackets,
//! inputs by name, `other_province` as itself), the inputs it reads, and
//! the agreed form of an input ([`AgreedInput`]). The same code turns the
//! jobs an operator writes in a terms file into the agreed jobs of the
//! terms ([`agreed_jobs`]) and a comparator's job file into what its
//! commitments state ([`Compiled::agreed_job`]), so the two compare
//! byte for byte.

use super::jobs::{Compiled, Expr, InputSpec, JobFile, ResultSpec};
use dxmesh_protocol::agreement::{AgreedInput, AgreedJob};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The agreed form of input `name` of a job file.
pub fn agreed_input(name: &str, spec: &InputSpec) -> AgreedInput {
    AgreedInput {
        name: name.to_string(),
        dataset: spec.dataset.clone(),
        provider: spec.provider.clone(),
        filter: spec
            .filter
            .iter()
            .map(|(f, v)| {
                let mut v = v.clone();
                v.sort();
                (f.clone(), v)
            })
            .collect(),
    }
}

impl Compiled {
    /// The canonical text of `e`.
    pub fn canonical(&self, e: &Expr) -> String {
        let bin = |op: &str, a: &Expr, b: &Expr| {
            format!("({} {op} {})", self.canonical(a), self.canonical(b))
        };
        match e {
            Expr::Bit(b) if *b == self.other_province_bit => "other_province".into(),
            Expr::Bit(b) => match self.inputs.get(*b as usize) {
                Some((name, _)) => name.clone(),
                None => self
                    .results
                    .get(*b as usize - self.inputs.len())
                    .map(|(_, e, _)| self.canonical(e))
                    .unwrap_or_default(),
            },
            Expr::Or(a, b) => bin("|", a, b),
            Expr::And(a, b) => bin("&", a, b),
            Expr::Minus(a, b) => bin("-", a, b),
            Expr::AttrMismatch(i) => match self.attr_pairs.get(*i) {
                Some(p) => format!(
                    "attr_mismatch({}.{}, {}.{})",
                    self.inputs[p.a].0, p.a_field, self.inputs[p.b].0, p.b_field
                ),
                None => String::new(),
            },
        }
    }

    /// The inputs `e` reads (through earlier results too), by index.
    pub fn inputs_of(&self, e: &Expr, out: &mut BTreeSet<usize>) {
        match e {
            Expr::Bit(b) if *b == self.other_province_bit => {}
            Expr::Bit(b) if (*b as usize) < self.inputs.len() => {
                out.insert(*b as usize);
            }
            Expr::Bit(b) => {
                if let Some((_, e, _)) = self.results.get(*b as usize - self.inputs.len()) {
                    self.inputs_of(e, out);
                }
            }
            Expr::Or(a, b) | Expr::And(a, b) | Expr::Minus(a, b) => {
                self.inputs_of(a, out);
                self.inputs_of(b, out);
            }
            Expr::AttrMismatch(i) => {
                if let Some(p) = self.attr_pairs.get(*i) {
                    out.insert(p.a);
                    out.insert(p.b);
                }
            }
        }
    }

    /// Result `name` as an agreement would state it, with the agreed form
    /// of each input it reads (by input index).
    pub fn agreed_job(&self, name: &str) -> Option<(AgreedJob, Vec<(usize, AgreedInput)>)> {
        let (_, e, _) = self.results.iter().find(|(n, _, _)| n == name)?;
        let mut used = BTreeSet::new();
        self.inputs_of(e, &mut used);
        let mut inputs: Vec<(usize, AgreedInput)> = used
            .into_iter()
            .map(|i| (i, agreed_input(&self.inputs[i].0, &self.inputs[i].1)))
            .collect();
        inputs.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        let job = AgreedJob {
            kind: name.to_string(),
            expr: self.canonical(e),
            inputs: inputs.iter().map(|(_, i)| i.name.clone()).collect(),
            fields: Vec::new(),
            candidates: None,
        };
        Some((job, inputs))
    }
}

/// Whether a canonical expression reads `other_province`.
pub fn reads_other_province(expr: &str) -> bool {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| w == "other_province")
}

/// The agreed inputs and jobs of terms whose operator wrote `inputs` and,
/// in order, `jobs` (kind, expression; an expression may name the inputs,
/// the jobs before it and `other_province`). Errors say which job. The
/// jobs' `fields` and `candidates` are the caller's to set.
pub fn agreed_jobs(
    path: &Path,
    inputs: &BTreeMap<String, InputSpec>,
    jobs: &[(String, String)],
) -> Result<(Vec<AgreedInput>, Vec<AgreedJob>), String> {
    let file = JobFile {
        inputs: inputs.clone(),
        results: jobs
            .iter()
            .map(|(k, e)| {
                let spec = ResultSpec {
                    expr: e.clone(),
                    disclose: None,
                };
                (k.clone(), spec)
            })
            .collect(),
        order: jobs.iter().map(|(k, _)| k.clone()).collect(),
        coverage: None,
        ministry: None,
    };
    if file.results.len() != jobs.len() {
        return Err("a result kind is listed twice".into());
    }
    let compiled = file.compile(path).map_err(|e| e.message)?;
    let agreed = jobs
        .iter()
        .filter_map(|(k, _)| compiled.agreed_job(k).map(|(j, _)| j))
        .collect();
    let inputs = inputs
        .iter()
        .map(|(n, spec)| agreed_input(n, spec))
        .collect();
    Ok((inputs, agreed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dataset: &str, provider: &str) -> InputSpec {
        InputSpec {
            dataset: dataset.into(),
            provider: provider.into(),
            filter: BTreeMap::new(),
        }
    }

    #[test]
    fn canonical_text_writes_earlier_results_out_and_lists_their_inputs() {
        let inputs: BTreeMap<String, InputSpec> = [
            ("registry".to_string(), spec("registry", "public_security")),
            ("insured".to_string(), spec("insured", "hr")),
            (
                "disabled".to_string(),
                spec("register", "disabled_federation"),
            ),
        ]
        .into();
        let jobs = vec![
            (
                "uninsured".to_string(),
                "registry - insured - other_province".to_string(),
            ),
            (
                "disabled_uninsured".to_string(),
                "uninsured & disabled".to_string(),
            ),
            (
                "name_conflicts".to_string(),
                "attr_mismatch(registry.name, insured.name)".to_string(),
            ),
        ];
        let (agreed_inputs, agreed) = agreed_jobs(Path::new("t.toml"), &inputs, &jobs).unwrap();
        assert_eq!(agreed_inputs.len(), 3);
        assert_eq!(agreed[0].expr, "((registry - insured) - other_province)");
        assert_eq!(agreed[0].inputs, ["insured", "registry"]);
        assert_eq!(
            agreed[1].expr,
            "(((registry - insured) - other_province) & disabled)"
        );
        assert_eq!(agreed[1].inputs, ["disabled", "insured", "registry"]);
        assert_eq!(agreed[2].expr, "attr_mismatch(registry.name, insured.name)");
        // Spacing and redundant brackets do not change the canonical text.
        let same = vec![(
            "uninsured".to_string(),
            "((registry-insured)) -other_province".to_string(),
        )];
        let (_, again) = agreed_jobs(Path::new("t.toml"), &inputs, &same).unwrap();
        assert_eq!(again[0].expr, agreed[0].expr);
        // The ministry's set is not a name for a job.
        let bad = vec![("other_province".to_string(), "registry".to_string())];
        let e = agreed_jobs(Path::new("t.toml"), &inputs, &bad).unwrap_err();
        assert!(e.contains("the name of the ministry's set"), "{e}");
        // An unknown name is refused, naming the job.
        let bad = vec![("everyone".to_string(), "registry | nobody".to_string())];
        let e = agreed_jobs(Path::new("t.toml"), &inputs, &bad).unwrap_err();
        assert!(e.contains("results.everyone.expr"), "{e}");
    }
}
