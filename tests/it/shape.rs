//! The module graph is a ladder, not a web (`docs/architecture.md`): every top-level module of
//! `src/` uses only modules on lower rungs, and inside a module its children use each other
//! without cycles. Read from the source (`crate::…` and `super::…` paths, comments and test code
//! left out), so a new upward `use` fails here with the edge that broke the rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The rungs, bottom first: a module may use modules of lower rungs only.
const LADDER: &[&[&str]] = &[
    &["model"],
    &["core"],
    &["capture", "gate", "signoff", "rowdiff", "metrics"],
    &["config", "kafka_tools"],
    &["replay", "store", "schemas"],
    &["generate"],
    &["serve"],
    &["http"],
    &["app"],
    &["cli"],
];

/// A module path inside the crate, e.g. `["serve", "ingest", "verify"]`.
type ModPath = Vec<String>;

/// Source files as (module path, text without comments and test code).
fn sources(root: &Path) -> Vec<(ModPath, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.ends_with(".rs") || name.ends_with("_tests.rs") || name == "tests.rs" {
                continue;
            }
            let rel = path.strip_prefix(root).expect("under src");
            let mut module: ModPath = rel
                .iter()
                .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_owned())
                .collect();
            if module.last().is_some_and(|l| l == "mod") {
                module.pop();
            }
            if matches!(module[..], [ref only] if only == "lib" || only == "main") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read source");
            out.push((module, code_only(&text)));
        }
    }
    out
}

/// The text without line comments and without what follows the first `#[cfg(test)]`.
fn code_only(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    code.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths `text` names after `crate::` or `super::`, resolved from `module`, down to two
/// segments (the top-level module and its child): `crate::serve::{ingest, lane::worker}` names
/// `serve::ingest` and `serve::lane`.
fn references(module: &ModPath, text: &str) -> Vec<ModPath> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let base: Option<(ModPath, usize)> = if !boundary {
            None
        } else if rest.starts_with("crate::") {
            Some((Vec::new(), "crate::".len()))
        } else if rest.starts_with("super::") {
            // `super` of module a::b (file `a/b.rs` or `a/b/mod.rs`) is `a`.
            let mut resolved = module.clone();
            let mut len = 0;
            while text[i + len..].starts_with("super::") {
                resolved.pop();
                len += "super::".len();
            }
            Some((resolved, len))
        } else {
            None
        };
        let Some((base, skip)) = base else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let after = &text[i + skip..];
        for tail in paths_at(after) {
            let mut full = base.clone();
            full.extend(tail);
            full.truncate(2);
            if !full.is_empty() {
                out.push(full);
            }
        }
        i += skip;
    }
    out
}

/// The first two segments of each path at the start of `text`: `a::b::c` → `[a, b]`,
/// `{a, b::{c, d}}` → `[a]`, `[b]`, `a::{b, c}` → `[a, b]`, `[a, c]`.
fn paths_at(text: &str) -> Vec<Vec<String>> {
    let ident: String = text
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if ident.is_empty() {
        if let Some(group) = text.strip_prefix('{') {
            return group_items(group)
                .into_iter()
                .flat_map(|item| paths_at(item.trim()))
                .collect();
        }
        return Vec::new();
    }
    let after = &text[ident.len()..];
    let Some(next) = after.strip_prefix("::") else {
        return vec![vec![ident]];
    };
    let inner = paths_at(next);
    if inner.is_empty() {
        return vec![vec![ident]];
    }
    inner
        .into_iter()
        .map(|mut p| {
            p.insert(0, ident.clone());
            p.truncate(2);
            p
        })
        .collect()
}

/// The comma-separated items of a `{…}` group (up to its closing brace), nested groups kept whole.
fn group_items(text: &str) -> Vec<&str> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&text[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
}

/// Edges between top-level modules, and between the children of each top-level module.
#[derive(Debug, Default)]
struct Graph {
    top: BTreeMap<String, BTreeSet<String>>,
    children: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

fn graph(files: &[(ModPath, String)]) -> Graph {
    let modules: BTreeSet<ModPath> = files
        .iter()
        .flat_map(|(m, _)| (1..=m.len().min(2)).map(|n| m[..n].to_vec()))
        .collect();
    let mut g = Graph::default();
    for (module, text) in files {
        let from_top = &module[0];
        for target in references(module, text) {
            let to_top = &target[0];
            if !modules.contains(&vec![to_top.clone()]) {
                continue; // `crate::SomeReexport` or an extern path: not a module
            }
            if to_top != from_top {
                g.top
                    .entry(from_top.clone())
                    .or_default()
                    .insert(to_top.clone());
                continue;
            }
            // Within a module: child to child (the module's own root file may use its children).
            let (Some(from_child), Some(to_child)) = (module.get(1), target.get(1)) else {
                continue;
            };
            if from_child != to_child && modules.contains(&target) {
                g.children
                    .entry(from_top.clone())
                    .or_default()
                    .entry(from_child.clone())
                    .or_default()
                    .insert(to_child.clone());
            }
        }
    }
    g
}

/// Every cycle's members (strongly connected components of more than one node), by Tarjan.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let edges = s.edges;
        for w in edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w.as_str()) {
                visit(s, w);
                let lw = s.low[w.as_str()];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w.as_str()) {
                let iw = s.index[w.as_str()];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}

/// What breaks the rules: upward edges between top-level modules, and cycles inside one.
fn violations(g: &Graph) -> Vec<String> {
    let rung = |m: &str| LADDER.iter().position(|r| r.contains(&m));
    let mut out = Vec::new();
    for (from, tos) in &g.top {
        for to in tos {
            match (rung(from), rung(to)) {
                (Some(a), Some(b)) if b < a => {}
                (Some(_), Some(_)) => {
                    out.push(format!("`{from}` uses `{to}`, which is not below it"))
                }
                _ => out.push(format!(
                    "`{from}` → `{to}`: a module the ladder does not place"
                )),
            }
        }
    }
    for (top, edges) in &g.children {
        for cycle in cycles(edges) {
            out.push(format!("a cycle inside `{top}`: {}", cycle.join(" ↔ ")));
        }
    }
    out
}

fn tree(files: &[(&str, &str)]) -> Vec<(ModPath, String)> {
    files
        .iter()
        .map(|(path, text)| {
            let mut m: ModPath = path.split('/').map(str::to_owned).collect();
            if m.last().is_some_and(|l| l == "mod") {
                m.pop();
            }
            (m, code_only(text))
        })
        .collect()
}

#[test]
fn the_module_graph_is_a_ladder_without_cycles() {
    let src = crate::support::root().join("src");
    let files = sources(&src);
    assert!(files.len() > 50, "read the crate: {} files", files.len());
    let g = graph(&files);
    // The reader sees real edges (a parser that found none would pass anything).
    assert!(g.top["serve"].contains("store"), "{:?}", g.top);
    assert!(g.children["serve"]["pipeline"].contains("ingest"));
    let broken = violations(&g);
    assert!(
        broken.is_empty(),
        "the module graph is not a ladder:\n{}",
        broken.join("\n")
    );
    // Every top-level module has its rung.
    for top in files.iter().map(|(m, _)| &m[0]) {
        assert!(
            LADDER.iter().any(|r| r.contains(&top.as_str())),
            "`{top}` is on no rung of the ladder: place it in LADDER and docs/architecture.md"
        );
    }
}

#[test]
fn an_upward_use_and_a_cycle_between_children_are_reported() {
    let files = tree(&[
        ("core/mod", "pub mod plan;\nuse crate::config::model::X;\n"),
        (
            "core/plan",
            "// use crate::store::Y; a comment is no edge\n",
        ),
        ("config/mod", "use crate::core::plan::compile;\n"),
        ("serve/mod", "mod ingest;\nmod verify;\n"),
        ("serve/ingest", "use super::verify::LogCheck;\n"),
        (
            "serve/verify",
            "use crate::serve::{ingest::lane_of, verify};\n",
        ),
        (
            "store/mod",
            "use crate::core::x;\n#[cfg(test)]\nuse crate::serve::y;\n",
        ),
    ]);
    let g = graph(&files);
    let broken = violations(&g);
    assert!(
        broken.contains(&"`core` uses `config`, which is not below it".to_owned()),
        "{broken:?}"
    );
    assert!(
        broken.contains(&"a cycle inside `serve`: ingest ↔ verify".to_owned()),
        "{broken:?}"
    );
    assert!(
        !g.top["store"].contains("serve"),
        "test code is no edge: {:?}",
        g.top
    );
    assert_eq!(broken.len(), 2, "{broken:?}");
}
