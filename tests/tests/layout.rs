//! The code's shape, checked: the folders of `node/src` show the chain, no
//! stage folder reaches into the daemon that drives it, no
//! two source files import each other (directly or round a longer loop),
//! no file is longer than [`MAX_FILE_LINES`], no function longer than
//! [`MAX_FN_LINES`] and no struct of the daemon has more than
//! [`MAX_DAEMON_STRUCT_FIELDS`] fields. Uses only `std`, so it also runs as
//! `rustc --test tests/tests/layout.rs && ./layout` without a build.
//!
//! An import is any path in a `use` or in code that names another file's
//! module: `crate::a::b`, `super::x`, `self::child::y` or `child::y`. A
//! `mod child;` declaration is not an import; a parent that re-exports or
//! calls into a child is, so a child must not reach back into its parent
//! (shared types live in a file of their own that both use).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Longest source file, in lines.
const MAX_FILE_LINES: usize = 800;
/// Longest function, in lines (signature to closing brace).
const MAX_FN_LINES: usize = 150;
/// Most fields a struct of `node/src/daemon` may have: the daemon's state
/// is split into desks, one per stage, not grown into one struct.
const MAX_DAEMON_STRUCT_FIELDS: usize = 15;
/// What `node/src` may hold besides folders.
const NODE_TOP_FILES: [&str; 3] = ["lib.rs", "main.rs", "admin.rs"];

fn workspace() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// A module of a crate: its file and its declared child modules.
struct Module {
    file: PathBuf,
    children: BTreeMap<String, usize>,
    parent: Option<usize>,
}

struct Crate {
    modules: Vec<Module>,
}

/// Source text with comments, string and char literals blanked out, so
/// that paths in doc links or messages are not taken for imports.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                out.push(if b[i] == b'\n' { b'\n' } else { b' ' });
                i += 1;
            }
            out.extend_from_slice(b"  ");
            i += 2;
        } else if c == b'r' && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#')) {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let prev_ident = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
            if prev_ident {
                out.push(c);
                i += 1;
                continue;
            }
            out.push(b'"');
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&b'#')) {
                    j += 1 + hashes;
                    break;
                }
                out.push(if b[j] == b'\n' { b'\n' } else { b' ' });
                j += 1;
            }
            out.push(b'"');
            i = j;
        } else if c == b'"' {
            out.push(b'"');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    out.push(b' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(if b[i] == b'\n' { b'\n' } else { b' ' });
                    i += 1;
                }
            }
            out.push(b'"');
            i += 1;
        } else if c == b'\'' {
            // A char literal ('x', '\n', '\u{3000}') or a lifetime ('a).
            let end = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&x| x == b'\'')
                    .map(|p| i + 2 + p)
            } else {
                let len = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + len) == Some(&b'\'')).then_some(i + 1 + len)
            };
            match end {
                Some(e) => {
                    out.extend(std::iter::repeat_n(b' ', e + 1 - i));
                    i = e + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `mod name;` declarations of a file (inline `mod name { .. }` blocks are
/// part of the file).
fn declared_modules(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in code.lines() {
        let t = line.trim();
        let t = t.strip_prefix("pub(crate) ").unwrap_or(t);
        let t = t.strip_prefix("pub(super) ").unwrap_or(t);
        let t = t.strip_prefix("pub ").unwrap_or(t);
        if let Some(rest) = t.strip_prefix("mod ")
            && let Some(name) = rest.strip_suffix(';')
        {
            out.push(name.trim().to_string());
        }
    }
    out
}

fn load_crate(root: &Path) -> Crate {
    let mut modules = vec![Module {
        file: root.to_path_buf(),
        children: BTreeMap::new(),
        parent: None,
    }];
    let mut next = 0;
    while next < modules.len() {
        let file = modules[next].file.clone();
        let text = fs::read_to_string(&file).unwrap_or_default();
        let dir = match file.file_name().and_then(|n| n.to_str()) {
            Some("lib.rs" | "main.rs" | "mod.rs") => file.parent().unwrap().to_path_buf(),
            _ => file.with_extension(""),
        };
        for name in declared_modules(&code_only(&text)) {
            let flat = dir.join(format!("{name}.rs"));
            let nested = dir.join(&name).join("mod.rs");
            let child = if flat.exists() { flat } else { nested };
            assert!(child.exists(), "{}: mod {name}: no file", file.display());
            let id = modules.len();
            modules.push(Module {
                file: child,
                children: BTreeMap::new(),
                parent: Some(next),
            });
            modules[next].children.insert(name, id);
        }
        next += 1;
    }
    Crate { modules }
}

/// Every path of a `use` tree (`a::{b, c::d}` -> `a::b`, `a::c::d`).
fn expand_use(tree: &str) -> Vec<String> {
    // One space at most between words; none around punctuation.
    let words: Vec<&str> = tree.split_whitespace().collect();
    let mut tree = words.join(" ");
    for p in ["::", "{", "}", ","] {
        tree = tree
            .replace(&format!(" {p}"), p)
            .replace(&format!("{p} "), p);
    }
    fn go(prefix: &str, s: &str, out: &mut Vec<String>) {
        // Split `s` at top-level commas.
        let mut depth = 0;
        let mut start = 0;
        let bytes = s.as_bytes();
        let mut parts = Vec::new();
        for (i, &c) in bytes.iter().enumerate() {
            match c {
                b'{' => depth += 1,
                b'}' => depth -= 1,
                b',' if depth == 0 => {
                    parts.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&s[start..]);
        for p in parts.into_iter().filter(|p| !p.is_empty()) {
            match p.find('{') {
                Some(b) => {
                    let head = p[..b].trim_end_matches("::");
                    let inner = &p[b + 1..p.len() - 1];
                    let pre = join(prefix, head);
                    go(&pre, inner, out);
                }
                None => {
                    let p = p.split(" as ").next().unwrap_or(p);
                    out.push(join(prefix, p));
                }
            }
        }
    }
    fn join(a: &str, b: &str) -> String {
        match (a.is_empty(), b.is_empty()) {
            (true, _) => b.to_string(),
            (_, true) => a.to_string(),
            _ => format!("{a}::{b}"),
        }
    }
    let mut out = Vec::new();
    go("", &tree, &mut out);
    out
}

/// The module a path names, from module `at` (None: not a path into this crate).
fn resolve(krate: &Crate, at: usize, path: &str) -> Option<usize> {
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut cur;
    let mut rest = &segs[..];
    match rest.first().copied()? {
        "crate" => {
            cur = 0;
            rest = &rest[1..];
        }
        "self" => {
            cur = at;
            rest = &rest[1..];
        }
        "super" => {
            cur = at;
            while rest.first() == Some(&"super") {
                cur = krate.modules[cur].parent?;
                rest = &rest[1..];
            }
        }
        first => {
            cur = *krate.modules[at].children.get(first)?;
            rest = &rest[1..];
        }
    }
    for s in rest {
        match krate.modules[cur].children.get(*s) {
            Some(c) => cur = *c,
            None => break,
        }
    }
    Some(cur)
}

/// The paths a file's code names (use trees expanded, plus paths in code).
fn paths_of(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    // `use` statements, possibly spanning lines.
    let mut rest = code;
    while let Some(p) = find_word(rest, "use") {
        let after = &rest[p + 3..];
        let Some(end) = after.find(';') else { break };
        let tree = &after[..end];
        if tree.starts_with(char::is_whitespace) {
            out.extend(expand_use(tree));
        }
        rest = &after[end..];
    }
    // Paths in code: an identifier followed by `::`.
    let b = code.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start_ok =
            i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b':');
        if start_ok && (b[i].is_ascii_alphabetic() || b[i] == b'_') {
            let mut j = i;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b':') {
                j += 1;
            }
            let tok = &code[i..j];
            if tok.contains("::") {
                out.push(tok.trim_end_matches(':').to_string());
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

fn find_word(s: &str, w: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(p) = s[from..].find(w) {
        let at = from + p;
        let before = at == 0 || !(b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_');
        let end = at + w.len();
        let after = end >= b.len() || !(b[end].is_ascii_alphanumeric() || b[end] == b'_');
        if before && after {
            return Some(at);
        }
        from = end;
    }
    None
}

/// Inline `mod x { .. }` blocks of a file: their line ranges. Inside one,
/// `super` is the file's own module.
fn inline_blocks(code: &str) -> Vec<(usize, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        if (t.starts_with("mod ") || t.starts_with("pub mod ")) && t.trim_end().ends_with('{') {
            let indent = l.len() - t.len();
            let end = (i + 1..lines.len())
                .find(|&k| {
                    lines[k].len() > indent
                        && lines[k][..indent].trim().is_empty()
                        && lines[k][indent..].starts_with('}')
                })
                .unwrap_or(lines.len());
            out.push((i, end));
        }
    }
    out
}

/// Import edges between the files of a crate, each with the first path
/// that makes it.
fn edges(krate: &Crate) -> BTreeMap<usize, BTreeMap<usize, String>> {
    let mut out: BTreeMap<usize, BTreeMap<usize, String>> = BTreeMap::new();
    for (id, m) in krate.modules.iter().enumerate() {
        let code = code_only(&fs::read_to_string(&m.file).unwrap_or_default());
        let blocks = inline_blocks(&code);
        let lines: Vec<&str> = code.lines().collect();
        let (mut outer, mut inner) = (String::new(), String::new());
        for (n, l) in lines.iter().enumerate() {
            let inside = blocks.iter().any(|&(s, e)| n > s && n < e);
            let target = if inside { &mut inner } else { &mut outer };
            target.push_str(l);
            target.push('\n');
        }
        let mut add = |path: &str| {
            if let Some(to) = resolve(krate, id, path)
                && to != id
            {
                out.entry(id)
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| path.to_string());
            }
        };
        for p in paths_of(&outer) {
            add(&p);
        }
        for p in paths_of(&inner) {
            // `super::` inside an inline module is this file's module.
            let p = match p.strip_prefix("super") {
                Some(r) if r.is_empty() || r.starts_with("::") => format!("self{r}"),
                _ => p,
            };
            add(&p);
        }
    }
    out
}

/// Strongly connected components with more than one file.
fn cycles(n: usize, edges: &BTreeMap<usize, BTreeMap<usize, String>>) -> Vec<Vec<usize>> {
    struct T<'a> {
        edges: &'a BTreeMap<usize, BTreeMap<usize, String>>,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(t: &mut T<'_>, v: usize) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        let succ: Vec<usize> = t
            .edges
            .get(&v)
            .map(|s| s.keys().copied().collect())
            .unwrap_or_default();
        for w in succ {
            match t.index[w] {
                None => {
                    visit(t, w);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(iw) if t.on[w] => t.low[v] = t.low[v].min(iw),
                _ => {}
            }
        }
        if Some(t.low[v]) == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            visit(&mut t, v);
        }
    }
    t.out
}

fn rel(p: &Path) -> String {
    p.strip_prefix(workspace())
        .unwrap_or(p)
        .display()
        .to_string()
}

fn import_cycles(root: &str) -> Vec<String> {
    let krate = load_crate(&workspace().join(root));
    let e = edges(&krate);
    cycles(krate.modules.len(), &e)
        .into_iter()
        .map(|c| {
            let mut names: Vec<String> = c.iter().map(|&i| rel(&krate.modules[i].file)).collect();
            names.sort();
            let mut links = Vec::new();
            for &a in &c {
                for (b, path) in e
                    .get(&a)
                    .into_iter()
                    .flatten()
                    .filter(|(b, _)| c.contains(b))
                {
                    links.push(format!(
                        "  {} -> {} ({path})",
                        rel(&krate.modules[a].file),
                        rel(&krate.modules[*b].file)
                    ));
                }
            }
            links.sort();
            format!("{}\n{}", names.join(" <-> "), links.join("\n"))
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn all_sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for d in ["protocol", "node", "tests"] {
        rust_files(&workspace().join(d), &mut files);
    }
    files
}

/// Functions longer than the limit: (file, line, name, length).
fn long_functions(file: &Path) -> Vec<(usize, String, usize)> {
    let text = fs::read_to_string(file).unwrap_or_default();
    let code = code_only(&text);
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        let indent = l.len() - t.len();
        let Some(p) = find_word(t, "fn") else {
            continue;
        };
        let head = &t[..p];
        let qualifiers_only = head.split_whitespace().all(|w| {
            [
                "pub",
                "pub(crate)",
                "pub(super)",
                "async",
                "const",
                "unsafe",
                "extern",
            ]
            .contains(&w)
        });
        if !qualifiers_only || !t[p + 2..].starts_with(' ') {
            continue;
        }
        let name: String = t[p + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // A declaration without a body (in a trait) ends with `;` before any `{`.
        let opens = (i..lines.len()).find(|&k| {
            let s = lines[k].trim_end();
            s.ends_with('{') || s.ends_with(';') || s.ends_with('}')
        });
        if opens.is_some_and(|k| lines[k].trim_end().ends_with(';')) {
            continue;
        }
        // The body ends at the first `}` at the signature's indentation.
        let end = (i..lines.len()).find(|&k| {
            let s = lines[k];
            (k == i && s.trim_end().ends_with('}'))
                || (k > i
                    && s.len() > indent
                    && s[..indent].trim().is_empty()
                    && s[indent..].starts_with('}'))
        });
        if let Some(end) = end {
            let len = end - i + 1;
            if len > MAX_FN_LINES {
                out.push((i + 1, name, len));
            }
        }
    }
    out
}

#[test]
fn node_src_holds_folders_and_the_three_root_files() {
    let dir = workspace().join("node/src");
    let mut stray = Vec::new();
    for e in fs::read_dir(&dir).expect("node/src").flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_file() && !NODE_TOP_FILES.contains(&name.as_str()) {
            stray.push(name);
        }
    }
    stray.sort();
    assert!(
        stray.is_empty(),
        "node/src holds files other than {NODE_TOP_FILES:?}: {stray:?}"
    );
}

#[test]
fn no_file_imports_itself_round_a_loop() {
    let mut found = Vec::new();
    for root in ["node/src/lib.rs", "protocol/src/lib.rs", "tests/src/lib.rs"] {
        found.extend(import_cycles(root));
    }
    assert!(
        found.is_empty(),
        "import cycles between files:\n{}",
        found.join("\n")
    );
}

/// The stages (`base`, `trust`, `dataset`, `publish`, `pull`, `compare`,
/// `ministry`, `audit`, ...) are what the daemon drives; none of them
/// reaches into `daemon/` (only the command line, which runs it, may).
#[test]
fn stage_folders_do_not_import_the_daemon() {
    let krate = load_crate(&workspace().join("node/src/lib.rs"));
    let node_src = workspace().join("node/src");
    let folder = |f: &Path| -> Option<String> {
        let rest = f.strip_prefix(&node_src).ok()?;
        let first = rest.components().next()?;
        (rest.components().count() > 1).then(|| first.as_os_str().to_string_lossy().into_owned())
    };
    let mut found = Vec::new();
    for (from, to) in edges(&krate) {
        let Some(stage) = folder(&krate.modules[from].file) else {
            continue;
        };
        if stage == "daemon" || stage == "cli" {
            continue;
        }
        for (t, path) in to {
            if folder(&krate.modules[t].file).as_deref() == Some("daemon") {
                found.push(format!("{} -> {path}", rel(&krate.modules[from].file)));
            }
        }
    }
    assert!(
        found.is_empty(),
        "stages importing the daemon:\n{}",
        found.join("\n")
    );
}

/// The structs with named fields of a file: (line, name, fields), fields
/// counted at the struct's own brace depth.
fn struct_fields(text: &str) -> Vec<(usize, String, usize)> {
    let code = code_only(text);
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(p) = find_word(&code[at..], "struct") {
        let start = at + p;
        at = start + "struct".len();
        let rest = &code[at..];
        let name: String = rest
            .trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // A tuple or unit struct ends before any brace.
        let Some(open) = rest.find(['{', ';', '(']) else {
            continue;
        };
        if rest.as_bytes()[open] != b'{' {
            continue;
        }
        let body_start = at + open + 1;
        let (mut depth, mut fields, mut i) = (1usize, 0usize, body_start);
        let b = code.as_bytes();
        let mut segment_has_colon = false;
        while i < b.len() && depth > 0 {
            match b[i] {
                b'{' | b'(' | b'[' | b'<' => depth += 1,
                // `->` is not a closing angle bracket.
                b'>' if i > 0 && b[i - 1] == b'-' => {}
                b'}' | b')' | b']' | b'>' => depth -= 1,
                b':' if depth == 1 && b.get(i + 1) != Some(&b':') && i > 0 && b[i - 1] != b':' => {
                    segment_has_colon = true
                }
                b',' if depth == 1 => {
                    fields += usize::from(segment_has_colon);
                    segment_has_colon = false;
                }
                _ => {}
            }
            i += 1;
        }
        fields += usize::from(segment_has_colon);
        let line = code[..start].matches('\n').count() + 1;
        out.push((line, name, fields));
        at = i.min(code.len());
    }
    out
}

/// No struct of the daemon carries every stage's state: each stage's desk
/// is its own struct.
#[test]
fn daemon_structs_stay_small() {
    let mut files = Vec::new();
    rust_files(&workspace().join("node/src/daemon"), &mut files);
    let mut big = Vec::new();
    for f in files {
        let text = fs::read_to_string(&f).unwrap_or_default();
        for (line, name, fields) in struct_fields(&text) {
            if fields > MAX_DAEMON_STRUCT_FIELDS {
                big.push(format!(
                    "{}:{line}: struct {name} has {fields} fields (limit {MAX_DAEMON_STRUCT_FIELDS})",
                    rel(&f)
                ));
            }
        }
    }
    assert!(
        big.is_empty(),
        "daemon structs too large:\n{}",
        big.join("\n")
    );
}

#[test]
fn the_checker_counts_a_structs_fields() {
    let text = "/// a: b, c: d\npub(super) struct A {\n    /// x: y\n    pub a: HashMap<u8, (u8, u8)>,\n    b: Box<dyn Fn(u8, u8) -> u8>,\n    c: Vec<[u8; 2]>\n}\nstruct T(u8, u8);\nenum E { X { a: u8 } }\nstruct U;\nstruct B { x: u8, }\n";
    let found = struct_fields(text);
    let counts: Vec<(&str, usize)> = found.iter().map(|(_, n, f)| (n.as_str(), *f)).collect();
    assert_eq!(counts, [("A", 3), ("B", 1)]);
    assert_eq!(found[0].0, 2);
}

#[test]
fn files_and_functions_stay_short() {
    let mut problems = Vec::new();
    for f in all_sources() {
        let text = fs::read_to_string(&f).unwrap_or_default();
        let n = text.lines().count();
        if n > MAX_FILE_LINES {
            problems.push(format!("{}: {n} lines (limit {MAX_FILE_LINES})", rel(&f)));
        }
        for (line, name, len) in long_functions(&f) {
            problems.push(format!(
                "{}:{line}: fn {name} is {len} lines (limit {MAX_FN_LINES})",
                rel(&f)
            ));
        }
    }
    assert!(problems.is_empty(), "too long:\n{}", problems.join("\n"));
}

#[test]
fn the_checker_sees_a_cycle_and_a_long_function() {
    let dir = std::env::temp_dir().join(format!("dxmesh-layout-{}", std::process::id()));
    let src = dir.join("src");
    fs::create_dir_all(src.join("a")).unwrap();
    fs::write(src.join("lib.rs"), "mod a;\nmod b;\n").unwrap();
    fs::write(
        src.join("a.rs"),
        "//! doc: crate::b is not an import here\nmod c;\npub use c::C;\n",
    )
    .unwrap();
    fs::write(
        src.join("a/c.rs"),
        "use super::super::b::B;\npub struct C;\n",
    )
    .unwrap();
    fs::write(
        src.join("b.rs"),
        "pub struct B(crate::a::C);\nfn f() -> &'static str { \"crate::a\" }\n",
    )
    .unwrap();
    let krate = load_crate(&src.join("lib.rs"));
    let found = cycles(krate.modules.len(), &edges(&krate));
    assert_eq!(found.len(), 1, "a -> c -> b -> a is one loop");
    assert_eq!(found[0].len(), 3);
    let body = format!(
        "fn long() {{\n{}}}\nfn short() {{}}\n",
        "    let x = 1;\n".repeat(MAX_FN_LINES)
    );
    fs::write(src.join("b.rs"), body).unwrap();
    let long = long_functions(&src.join("b.rs"));
    assert_eq!(long.len(), 1);
    assert_eq!(long[0].1, "long");
    let krate = load_crate(&src.join("lib.rs"));
    assert!(cycles(krate.modules.len(), &edges(&krate)).is_empty());
    fs::remove_dir_all(&dir).unwrap();
}
