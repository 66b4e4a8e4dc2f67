//! Comparison job files: named inputs (a pulled feed, optionally filtered
//! on a clear field) and named results defined by set expressions over
//! them, with what to disclose for each result and the coverage statistics
//! to compute. Parsing and compiling only; [`crate::compare::pass`] runs them.
//! A refused file is a [`JobError`] naming the file and the field; an
//! expression that does not parse is a [`ParseError`] with its position.
//!
//! Expression grammar (left-associative, `&` binds tighter than `|` and `-`):
//!
//! ```text
//! expr   := term (('|' | '-') term)*
//! term   := factor ('&' factor)*
//! factor := NAME | '(' expr ')' | 'attr_mismatch' '(' NAME '.' FIELD ',' NAME '.' FIELD ')'
//! ```
//!
//! `NAME` is an input, an earlier result, or `other_province` (the IDs the
//! ministry reports insured in another province).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a job file was refused.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}", path = .path.display())]
pub struct JobError {
    /// File.
    pub path: PathBuf,
    /// What is wrong (field and line where known).
    pub message: String,
}

/// The job file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    /// Inputs by name.
    pub inputs: BTreeMap<String, InputSpec>,
    /// Results, evaluated in the order given by `order`.
    pub results: BTreeMap<String, ResultSpec>,
    /// Result names in evaluation (and output) order.
    pub order: Vec<String>,
    /// Coverage statistics.
    #[serde(default)]
    pub coverage: Option<CoverageSpec>,
    /// The ministry check with the ministry.
    #[serde(default)]
    pub ministry: Option<MinistrySpec>,
}

/// One input: the feed of the active agreement for `dataset` from `provider`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Dataset name in the agreement.
    pub dataset: String,
    /// The provider's department (from the roster).
    pub provider: String,
    /// Keep only records whose clear field has one of the values.
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, Vec<String>>,
}

/// One result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultSpec {
    /// Set expression.
    pub expr: String,
    /// What to ask the provider of `input` to disclose for the result's tokens.
    #[serde(default)]
    pub disclose: Option<DiscloseSpec>,
}

/// Disclosure for a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscloseSpec {
    /// The input whose provider discloses.
    pub input: String,
    /// Fields (`id_number` first).
    pub fields: Vec<String>,
}

/// Coverage by region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverageSpec {
    /// The input whose clear `region_code` groups the counts.
    pub input: String,
    /// The clear field to group by.
    #[serde(default = "region_code")]
    pub field: String,
    /// Expression of the eligible population.
    pub eligible: String,
    /// Expression of the covered population.
    pub covered: String,
}

fn region_code() -> String {
    "region_code".into()
}

/// The ministry's ministry check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinistrySpec {
    /// Dataset name of the ministry's national index agreement.
    pub dataset: String,
    /// The result whose candidates are checked (evaluated with `other_province` empty).
    pub candidates: String,
    /// The input whose provider discloses the candidates' ID numbers.
    pub id_source: String,
    /// Insurance types that count as covered elsewhere.
    pub insurance_types: Vec<String>,
    /// This province's code (records with it are not "another province").
    pub home_province: String,
    /// The result kind the candidates are committed as (the agreed
    /// candidates job); `<candidates>_candidates` if not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates_kind: Option<String>,
}

impl MinistrySpec {
    /// The result kind of the candidates' commitment.
    pub fn candidates_kind(&self) -> String {
        self.candidates_kind
            .clone()
            .unwrap_or_else(|| format!("{}_candidates", self.candidates))
    }
}

/// A compiled expression over membership bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Membership of bit `n` (an input, a result, or `other_province`).
    Bit(u32),
    /// Union.
    Or(Box<Expr>, Box<Expr>),
    /// Intersection.
    And(Box<Expr>, Box<Expr>),
    /// Difference.
    Minus(Box<Expr>, Box<Expr>),
    /// Attribute mismatch: index into the job's attribute pairs.
    AttrMismatch(usize),
}

impl Expr {
    /// Evaluates against a bitmask and the attribute-mismatch flags.
    pub fn eval(&self, bits: u64, mismatch: &[bool]) -> bool {
        match self {
            Expr::Bit(n) => bits & (1 << n) != 0,
            Expr::Or(a, b) => a.eval(bits, mismatch) || b.eval(bits, mismatch),
            Expr::And(a, b) => a.eval(bits, mismatch) && b.eval(bits, mismatch),
            Expr::Minus(a, b) => a.eval(bits, mismatch) && !b.eval(bits, mismatch),
            Expr::AttrMismatch(i) => mismatch.get(*i).copied().unwrap_or(false),
        }
    }
}

/// An attribute comparison: (input a, field a, input b, field b).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPair {
    /// First input index.
    pub a: usize,
    /// Its attribute field.
    pub a_field: String,
    /// Second input index.
    pub b: usize,
    /// Its attribute field.
    pub b_field: String,
}

/// A job file ready to run.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Input names; input `i` is bit `i`.
    pub inputs: Vec<(String, InputSpec)>,
    /// Results in order; result `j` is bit `inputs.len() + j`.
    pub results: Vec<(String, Expr, Option<DiscloseSpec>)>,
    /// Bit of `other_province`.
    pub other_province_bit: u32,
    /// Attribute comparisons referenced.
    pub attr_pairs: Vec<AttrPair>,
    /// Coverage: (input index, field, eligible, covered).
    pub coverage: Option<(usize, String, Expr, Expr)>,
    /// Ministry check.
    pub ministry: Option<MinistrySpec>,
    /// Candidates expression (with `other_province` false) for the ministry check.
    pub candidates: Option<Expr>,
}

/// Why an expression did not parse: what was wrong, where in it, and the
/// expression itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A character was expected (a closing bracket, `.`, `,`).
    #[error("expected '{expected}' at position {pos} of {src:?}")]
    Expected {
        /// The character expected.
        expected: char,
        /// Byte offset in the expression.
        pos: usize,
        /// The expression.
        src: String,
    },
    /// An input, result or field name was expected.
    #[error("expected a name at position {pos} of {src:?}")]
    Name {
        /// Byte offset in the expression.
        pos: usize,
        /// The expression.
        src: String,
    },
    /// A name is neither an input, an earlier result nor `other_province`.
    #[error("unknown input or result {name:?} in {src:?}")]
    Unknown {
        /// The name.
        name: String,
        /// The expression.
        src: String,
    },
    /// `attr_mismatch` names something other than an input.
    #[error("attr_mismatch: {name:?} is not an input")]
    NotAnInput {
        /// The name.
        name: String,
    },
    /// Text follows a complete expression.
    #[error("unexpected text at position {pos} of {src:?}")]
    Trailing {
        /// Byte offset in the expression.
        pos: usize,
        /// The expression.
        src: String,
    },
    /// More operators and brackets than [`MAX_EXPR_OPERATORS`].
    #[error(
        "{count} operators and brackets, more than the {MAX_EXPR_OPERATORS} an expression may hold"
    )]
    TooComplex {
        /// Operators and opening brackets in the expression.
        count: usize,
    },
}

/// Most operators (`|`, `&`, `-`) and opening brackets an expression may
/// hold. Real jobs hold a few; the bound keeps parsing, evaluating and
/// dropping an expression (all recursive) within the stack, whoever wrote
/// it (a terms file, a commitment in an evidence bundle).
pub const MAX_EXPR_OPERATORS: usize = 200;

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    names: &'a BTreeMap<String, u32>,
    inputs: &'a [(String, InputSpec)],
    attr_pairs: &'a mut Vec<AttrPair>,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.src[self.pos..].starts_with(char::is_whitespace) {
            self.pos += self.src[self.pos..]
                .chars()
                .next()
                .map(char::len_utf8)
                .unwrap_or(1);
        }
    }
    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.src[self.pos..].chars().next()
    }
    fn expect(&mut self, c: char) -> Result<(), ParseError> {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            Err(ParseError::Expected {
                expected: c,
                pos: self.pos,
                src: self.src.to_string(),
            })
        }
    }
    fn name(&mut self) -> Result<String, ParseError> {
        self.skip_ws();
        let rest = &self.src[self.pos..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(ParseError::Name {
                pos: self.pos,
                src: self.src.to_string(),
            });
        }
        self.pos += len;
        Ok(rest[..len].to_string())
    }
    fn expr(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.term()?;
        loop {
            match self.peek() {
                Some('|') => {
                    self.pos += 1;
                    left = Expr::Or(Box::new(left), Box::new(self.term()?));
                }
                Some('-') => {
                    self.pos += 1;
                    left = Expr::Minus(Box::new(left), Box::new(self.term()?));
                }
                _ => return Ok(left),
            }
        }
    }
    fn term(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.factor()?;
        while self.peek() == Some('&') {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.factor()?));
        }
        Ok(left)
    }
    fn factor(&mut self) -> Result<Expr, ParseError> {
        if self.peek() == Some('(') {
            self.pos += 1;
            let e = self.expr()?;
            self.expect(')')?;
            return Ok(e);
        }
        let n = self.name()?;
        if n == "attr_mismatch" {
            self.expect('(')?;
            let (a, af) = self.dotted()?;
            self.expect(',')?;
            let (b, bf) = self.dotted()?;
            self.expect(')')?;
            let pair = AttrPair {
                a,
                a_field: af,
                b,
                b_field: bf,
            };
            let idx = match self.attr_pairs.iter().position(|p| *p == pair) {
                Some(i) => i,
                None => {
                    self.attr_pairs.push(pair);
                    self.attr_pairs.len() - 1
                }
            };
            return Ok(Expr::AttrMismatch(idx));
        }
        self.names
            .get(&n)
            .map(|b| Expr::Bit(*b))
            .ok_or_else(|| ParseError::Unknown {
                name: n,
                src: self.src.to_string(),
            })
    }
    fn dotted(&mut self) -> Result<(usize, String), ParseError> {
        let input = self.name()?;
        self.expect('.')?;
        let field = self.name()?;
        let idx = self
            .inputs
            .iter()
            .position(|(n, _)| *n == input)
            .ok_or(ParseError::NotAnInput { name: input })?;
        Ok((idx, field))
    }
}

/// Parses one expression against the names known so far.
pub fn parse_expr(
    src: &str,
    names: &BTreeMap<String, u32>,
    inputs: &[(String, InputSpec)],
    attr_pairs: &mut Vec<AttrPair>,
) -> Result<Expr, ParseError> {
    let count = src.matches(['|', '&', '-', '(']).count();
    if count > MAX_EXPR_OPERATORS {
        return Err(ParseError::TooComplex { count });
    }
    let mut p = Parser {
        src,
        pos: 0,
        names,
        inputs,
        attr_pairs,
    };
    let e = p.expr()?;
    if p.peek().is_some() {
        return Err(ParseError::Trailing {
            pos: p.pos,
            src: src.to_string(),
        });
    }
    Ok(e)
}

/// Replaces `other_province` by "never" (for the ministry candidates).
fn without(e: &Expr, bit: u32) -> Expr {
    match e {
        Expr::Bit(b) if *b == bit => {
            Expr::Minus(Box::new(Expr::Bit(bit)), Box::new(Expr::Bit(bit)))
        }
        Expr::Bit(b) => Expr::Bit(*b),
        Expr::Or(a, b) => Expr::Or(Box::new(without(a, bit)), Box::new(without(b, bit))),
        Expr::And(a, b) => Expr::And(Box::new(without(a, bit)), Box::new(without(b, bit))),
        Expr::Minus(a, b) => Expr::Minus(Box::new(without(a, bit)), Box::new(without(b, bit))),
        Expr::AttrMismatch(i) => Expr::AttrMismatch(*i),
    }
}

impl JobFile {
    /// Reads a job file.
    pub fn load(path: &Path) -> Result<JobFile, JobError> {
        let text = std::fs::read_to_string(path).map_err(|e| JobError {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| JobError {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })
    }

    /// Compiles expressions; errors name the result.
    ///
    /// Inputs are bits `0..`, then the results in `order`, then
    /// `other_province`; each expression may name the inputs, the results
    /// before it and `other_province` ([`JobFile::compile_results`]), then
    /// the coverage and the ministry candidates are compiled against all of
    /// them.
    pub fn compile(&self, path: &Path) -> Result<Compiled, JobError> {
        let inputs: Vec<(String, InputSpec)> = self
            .inputs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if inputs.len() + self.order.len() + 1 > 64 {
            return Err(refused(
                path,
                "at most 63 inputs and results together".into(),
            ));
        }
        if let Some(n) = inputs
            .iter()
            .map(|(n, _)| n)
            .chain(&self.order)
            .find(|n| *n == "other_province")
        {
            return Err(refused(
                path,
                format!(
                    "{n:?} is the name of the ministry's set; name the input or result otherwise"
                ),
            ));
        }
        let mut names: BTreeMap<String, u32> = inputs
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.clone(), i as u32))
            .collect();
        let other_province_bit = (inputs.len() + self.order.len()) as u32;
        names.insert("other_province".into(), other_province_bit);
        let mut scope = Scope {
            inputs,
            names,
            attr_pairs: Vec::new(),
        };
        let results = self.compile_results(path, &mut scope)?;
        let coverage = self.compile_coverage(path, &mut scope)?;
        let candidates = self.compile_candidates(path, &results, other_province_bit)?;
        Ok(Compiled {
            inputs: scope.inputs,
            results,
            other_province_bit,
            attr_pairs: scope.attr_pairs,
            coverage,
            ministry: self.ministry.clone(),
            candidates,
        })
    }

    /// The results in `order`, each parsed against the inputs and the
    /// results before it (and added to `scope` for those after it); every
    /// result must be in `order`.
    fn compile_results(
        &self,
        path: &Path,
        scope: &mut Scope,
    ) -> Result<Vec<(String, Expr, Option<DiscloseSpec>)>, JobError> {
        let mut results = Vec::new();
        for (j, name) in self.order.iter().enumerate() {
            let spec = self.results.get(name).ok_or_else(|| {
                refused(
                    path,
                    format!("order lists {name:?}, which has no [results.{name}]"),
                )
            })?;
            let e = scope
                .parse(&spec.expr)
                .map_err(|m| refused(path, format!("results.{name}.expr: {m}")))?;
            if let Some(d) = &spec.disclose
                && !self.inputs.contains_key(&d.input)
            {
                return Err(refused(
                    path,
                    format!(
                        "results.{name}.disclose.input: {:?} is not an input",
                        d.input
                    ),
                ));
            }
            results.push((name.clone(), e, spec.disclose.clone()));
            let bit = (scope.inputs.len() + j) as u32;
            scope.names.insert(name.clone(), bit);
        }
        if let Some(extra) = self.results.keys().find(|k| !self.order.contains(k)) {
            return Err(refused(
                path,
                format!("results.{extra} is not listed in `order`"),
            ));
        }
        Ok(results)
    }

    /// The coverage statistics: the grouping input's index, the field, and
    /// the eligible and covered expressions.
    fn compile_coverage(
        &self,
        path: &Path,
        scope: &mut Scope,
    ) -> Result<Option<(usize, String, Expr, Expr)>, JobError> {
        let Some(c) = &self.coverage else {
            return Ok(None);
        };
        let idx = scope
            .inputs
            .iter()
            .position(|(n, _)| *n == c.input)
            .ok_or_else(|| {
                refused(
                    path,
                    format!("coverage.input: {:?} is not an input", c.input),
                )
            })?;
        let el = scope
            .parse(&c.eligible)
            .map_err(|m| refused(path, format!("coverage.eligible: {m}")))?;
        let co = scope
            .parse(&c.covered)
            .map_err(|m| refused(path, format!("coverage.covered: {m}")))?;
        Ok(Some((idx, c.field.clone(), el, co)))
    }

    /// The ministry candidates: their result's expression with
    /// `other_province` never true.
    fn compile_candidates(
        &self,
        path: &Path,
        results: &[(String, Expr, Option<DiscloseSpec>)],
        other_province_bit: u32,
    ) -> Result<Option<Expr>, JobError> {
        let Some(m) = &self.ministry else {
            return Ok(None);
        };
        let (_, e, _) = results
            .iter()
            .find(|(n, _, _)| *n == m.candidates)
            .ok_or_else(|| {
                refused(
                    path,
                    format!("ministry.candidates: {:?} is not a result", m.candidates),
                )
            })?;
        if !self.inputs.contains_key(&m.id_source) {
            return Err(refused(
                path,
                format!("ministry.id_source: {:?} is not an input", m.id_source),
            ));
        }
        Ok(Some(without(e, other_province_bit)))
    }
}

/// What an expression may name while a job compiles: the inputs, the
/// results so far and `other_province` with their bits, and the attribute
/// comparisons met so far.
struct Scope {
    inputs: Vec<(String, InputSpec)>,
    names: BTreeMap<String, u32>,
    attr_pairs: Vec<AttrPair>,
}

impl Scope {
    /// Parses `src` against what is known so far.
    fn parse(&mut self, src: &str) -> Result<Expr, ParseError> {
        parse_expr(src, &self.names, &self.inputs, &mut self.attr_pairs)
    }
}

/// A job file refused, with what is wrong.
fn refused(path: &Path, message: String) -> JobError {
    JobError {
        path: path.to_path_buf(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> (BTreeMap<String, u32>, Vec<(String, InputSpec)>) {
        let inputs: Vec<(String, InputSpec)> = ["a", "b", "c"]
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    InputSpec {
                        dataset: n.to_string(),
                        provider: "x".into(),
                        filter: Default::default(),
                    },
                )
            })
            .collect();
        let names = inputs
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.clone(), i as u32))
            .collect();
        (names, inputs)
    }

    #[test]
    fn precedence_and_evaluation() {
        let (names, inputs) = names();
        let mut pairs = Vec::new();
        let e = parse_expr("a - b - c", &names, &inputs, &mut pairs).unwrap();
        assert!(e.eval(0b001, &[]));
        assert!(!e.eval(0b011, &[]));
        assert!(!e.eval(0b101, &[]));
        let e = parse_expr("a & (b | c)", &names, &inputs, &mut pairs).unwrap();
        assert!(
            e.eval(0b101, &[]) && e.eval(0b011, &[]) && !e.eval(0b001, &[]) && !e.eval(0b110, &[])
        );
        let e = parse_expr("a | b & c", &names, &inputs, &mut pairs).unwrap();
        assert!(e.eval(0b001, &[]) && e.eval(0b110, &[]) && !e.eval(0b010, &[]));
        let e = parse_expr("attr_mismatch(a.name, b.name)", &names, &inputs, &mut pairs).unwrap();
        assert!(e.eval(0, &[true]) && !e.eval(0b111, &[false]));
        assert_eq!(pairs.len(), 1);
    }

    #[test]
    fn errors_say_where() {
        let (names, inputs) = names();
        let mut pairs = Vec::new();
        assert!(
            parse_expr("a - nope", &names, &inputs, &mut pairs)
                .unwrap_err()
                .to_string()
                .contains("\"nope\"")
        );
        assert!(
            parse_expr("a - (b", &names, &inputs, &mut pairs)
                .unwrap_err()
                .to_string()
                .contains("expected ')'")
        );
        assert!(
            parse_expr("a b", &names, &inputs, &mut pairs)
                .unwrap_err()
                .to_string()
                .contains("unexpected text")
        );
        assert!(parse_expr("attr_mismatch(z.name, a.name)", &names, &inputs, &mut pairs).is_err());
        // Regression (found by `node/tests/prop_inputs.rs`): a thousand
        // nested brackets, or operators, overflowed the stack.
        let deep = format!("{}a{}", "(".repeat(1000), ")".repeat(1000));
        let long = vec!["a"; 100_000].join(" - ");
        for src in [deep.as_str(), &long] {
            assert!(matches!(
                parse_expr(src, &names, &inputs, &mut pairs),
                Err(ParseError::TooComplex { .. })
            ));
        }
        let nested = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert!(parse_expr(&nested, &names, &inputs, &mut pairs).is_ok());
        // The position is where the parser stood: after `b`, at the end.
        assert_eq!(
            parse_expr("a - (b", &names, &inputs, &mut pairs).unwrap_err(),
            ParseError::Expected {
                expected: ')',
                pos: 6,
                src: "a - (b".into()
            }
        );
    }
}
