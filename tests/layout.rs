//! The library's layout: no circle in the graph drawn from the imports (`crate::` and `super::`
//! paths, outside `#[cfg(test)] mod tests` and comments), neither between top-level modules nor
//! between files. A folder module's files are one module split up: a child using its parent's
//! types (`super::`) is an edge, the parent naming its own children is not.
//!
//! Files are cut by concept, not by length: the 400-line cap this file once held made objects
//! be split across files to fit, so their invariants crossed files; it is gone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src/")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `src/origin_pool/state.rs` is `["origin_pool", "state"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file
        .strip_prefix(src)
        .expect("under src/")
        .with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The code a file contributes outside its unit tests, without comments.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `crate::a::b::C` and `super::x::Y` paths in `code`, as module-name segments (lower-case
/// identifiers) after their root.
fn paths_in(code: &str) -> Vec<(bool, Vec<String>)> {
    let mut found = Vec::new();
    for root in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(at) = rest.find(root) {
            let before = rest[..at].chars().last();
            rest = &rest[at + root.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            // Module segments: lower-case identifiers, each directly followed by `::`.
            let mut segments = Vec::new();
            for segment in rest.split("::") {
                let ident: String = segment
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !ident.starts_with(|c: char| c.is_ascii_lowercase()) {
                    break;
                }
                let whole = ident.len() == segment.len();
                segments.push(ident);
                if !whole {
                    break;
                }
            }
            found.push((root == "crate::", segments));
        }
    }
    found
}

/// Nodes of `edges` that sit on a cycle (Tarjan's strongly connected components).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on_stack: BTreeSet<String>,
        found: Vec<Vec<String>>,
    }
    impl Walk<'_> {
        fn visit(&mut self, v: &str) {
            let n = self.index.len();
            self.index.insert(v.to_owned(), n);
            self.low.insert(v.to_owned(), n);
            self.stack.push(v.to_owned());
            self.on_stack.insert(v.to_owned());
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v.to_owned(), low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v.to_owned(), low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(&w);
                    let done = w == v;
                    component.push(w);
                    if done {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.found
}

struct Source {
    files: Vec<(Vec<String>, PathBuf, String)>,
}

fn source() -> Source {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    let files = paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read a source file");
            (module_of(&src, &path), path, text)
        })
        .collect();
    Source { files }
}

#[test]
fn the_imports_draw_no_circle() {
    let source = source();
    let modules: BTreeSet<Vec<String>> = source.files.iter().map(|(m, _, _)| m.clone()).collect();
    // The longest prefix of `path` that is a module file.
    let resolve = |path: &[String]| {
        (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| modules.contains(p))
    };
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, _, text) in &source.files {
        if module.last().is_some_and(|m| m == "tests") {
            continue;
        }
        let parent = &module[..module.len().saturating_sub(1)];
        for (from_crate, segments) in paths_in(&code_of(text)) {
            let mut full: Vec<String> = if from_crate {
                Vec::new()
            } else {
                parent.to_vec()
            };
            full.extend(segments);
            let Some(target) = resolve(&full) else {
                continue;
            };
            if &target == module {
                continue;
            }
            if let (Some(a), Some(b)) = (module.first(), target.first())
                && a != b
            {
                top.entry(a.clone()).or_default().insert(b.clone());
            }
            files
                .entry(module.join("::"))
                .or_default()
                .insert(target.join("::"));
        }
    }
    assert!(top.len() > 10, "the graph was not drawn: {top:?}");
    assert_eq!(
        cycles(&top),
        Vec::<Vec<String>>::new(),
        "modules in a circle"
    );
    assert_eq!(
        cycles(&files),
        Vec::<Vec<String>>::new(),
        "files in a circle"
    );
}
