//! The core's modules form no import cycle (issue 10): each top-level module of `src/` (a
//! `foo.rs` together with its `foo/` folder) may use the modules below it, never one that uses
//! it back. The graph is read from the source text: every `crate::name` path, in `use` lines and
//! inline, including `crate::{a, b}` groups; comments are left out.
#![cfg(test)]

#[path = "module_graph/architecture_doc.rs"]
mod architecture_doc;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn identifier_at(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The top-level modules one file's text names through `crate::`.
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = group.split('}').next().unwrap_or("");
            for part in group.split(',') {
                let name = identifier_at(part.trim());
                if !name.is_empty() {
                    named.insert(name);
                }
            }
        } else {
            let name = identifier_at(rest);
            if !name.is_empty() {
                named.insert(name);
            }
        }
    }
    named
}

fn read_graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    let mut folders = vec![src.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("src/ is readable") {
            let path = entry.expect("src/ is readable").path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).expect("below src/");
            let first = relative
                .components()
                .next()
                .expect("a file has a name")
                .as_os_str()
                .to_string_lossy();
            let module = first.trim_end_matches(".rs").to_string();
            if module == "lib" {
                continue; // The facade re-exports everything.
            }
            let text = std::fs::read_to_string(&path).expect("a source file is text");
            let used = named_modules(&without_comments(&text));
            graph
                .entry(module.clone())
                .or_default()
                .extend(used.into_iter().filter(|m| *m != module));
        }
    }
    graph
}

/// A cycle through `start`, if the graph has one, as the modules along it.
fn cycle_from(graph: &Graph, start: &str) -> Option<Vec<String>> {
    let mut path = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    fn walk(
        graph: &Graph,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        let here = path.last().cloned().unwrap_or_default();
        for next in graph.get(&here).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if graph.contains_key(next) && seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    walk(graph, start, &mut path, &mut seen).then_some(path)
}

#[test]
fn the_cores_modules_have_no_import_cycle() {
    let graph = read_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(graph.len() > 5, "the graph was not read: {graph:?}");
    let cycles: Vec<Vec<String>> = graph.keys().filter_map(|m| cycle_from(&graph, m)).collect();
    assert!(
        cycles.is_empty(),
        "import cycles among src/ modules: {cycles:?}\nthe graph: {graph:#?}"
    );
}

#[test]
fn the_cycle_check_finds_a_planted_cycle() {
    let mut graph = Graph::new();
    let uses =
        named_modules("use crate::{events::Event, store::Store};\nlet x = crate::sync::run;");
    assert_eq!(uses, ["events", "store", "sync"].map(String::from).into());
    graph.insert("events".into(), ["sync".to_string()].into());
    graph.insert("sync".into(), ["store".to_string()].into());
    graph.insert("store".into(), ["events".to_string()].into());
    assert_eq!(
        cycle_from(&graph, "events"),
        Some(
            ["events", "sync", "store", "events"]
                .map(String::from)
                .to_vec()
        )
    );
    graph.insert("store".into(), BTreeSet::new());
    assert_eq!(cycle_from(&graph, "events"), None);
}
