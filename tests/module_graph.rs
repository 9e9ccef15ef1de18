//! No crate of the workspace has an import cycle among its modules (issues 10 and 18): each
//! top-level module of a crate (a `foo.rs` together with its `foo/` folder) may use the modules
//! below it, never one that uses it back; and headway-sunbird's layers (`config`, `wire`,
//! `protocol`, `client`) only look down. The graph is read from the product code's text: every
//! `crate::name` path, in `use` lines and inline, including `crate::{a, b}` groups, a name the
//! crate root re-exports counting as its module; comments, `#[cfg(test)]` modules and
//! `tests.rs` files are left out.
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

/// `text` without its inline `#[cfg(test)] mod name { ... }` blocks (unit tests may use
/// anything above their module); every other item stays.
fn without_test_modules(text: &str) -> String {
    let mut kept = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        kept.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let item = after.trim_start();
        let Some(open) = item.find(['{', ';']).filter(|_| item.starts_with("mod ")) else {
            rest = after;
            continue;
        };
        if item.as_bytes()[open] == b';' {
            rest = &item[open + 1..];
            continue;
        }
        let mut depth = 0usize;
        let mut end = item.len();
        for (i, c) in item.char_indices().skip_while(|(i, _)| *i < open) {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &item[end..];
    }
    kept.push_str(rest);
    kept
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

/// What the crate root re-exports, by name: `pub use store::{Store, StoreOptions};` maps
/// `Store` and `StoreOptions` to `store`, so `use crate::Store` counts as a use of `store`.
fn re_exports(root: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for (at, _) in root.match_indices("pub use ") {
        let statement = root[at + "pub use ".len()..]
            .split(';')
            .next()
            .unwrap_or("");
        let statement: String = statement.split_whitespace().collect::<Vec<_>>().join(" ");
        let Some((module, rest)) = statement.split_once("::") else {
            continue;
        };
        let module = identifier_at(module.trim());
        let rest = rest.trim().trim_start_matches('{').trim_end_matches('}');
        for part in rest.split(',') {
            let exported = part
                .rsplit(" as ")
                .next()
                .unwrap_or("")
                .rsplit("::")
                .next()
                .unwrap_or("")
                .trim();
            let name = identifier_at(exported);
            if !name.is_empty() && name != "self" {
                names.insert(name, module.clone());
            }
        }
    }
    names
}

fn read_graph(src: &Path) -> Graph {
    let root = ["lib.rs", "main.rs"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(src.join(f)).ok())
        .map(|text| without_comments(&text))
        .collect::<Vec<_>>()
        .join("\n");
    let exported = re_exports(&root);
    let mut graph = Graph::new();
    let mut folders = vec![src.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("the source folder is readable") {
            let path = entry.expect("the source folder is readable").path();
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
            if module == "lib" || module == "main" {
                continue; // The crate root declares and re-exports everything.
            }
            if path.file_stem().is_some_and(|stem| stem == "tests") {
                continue; // A module's unit tests may use anything above it.
            }
            let text = std::fs::read_to_string(&path).expect("a source file is text");
            let used = named_modules(&without_test_modules(&without_comments(&text)))
                .into_iter()
                .map(|name| exported.get(&name).cloned().unwrap_or(name));
            graph
                .entry(module.clone())
                .or_default()
                .extend(used.filter(|m| *m != module));
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

/// Every crate of the workspace, by its source folder.
const CRATES: [&str; 6] = [
    "src",
    "cli/src",
    "adapters/sunbird/src",
    "adapters/sunbird-server/src",
    "bindings/ffi/src",
    "bindings/node/src",
];

/// Every cycle of the graph, one per module on one.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    graph.keys().filter_map(|m| cycle_from(graph, m)).collect()
}

#[test]
fn no_crate_of_the_workspace_has_an_import_cycle() {
    for folder in CRATES {
        let graph = read_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join(folder));
        assert!(
            graph.len() >= 3,
            "{folder}: the graph was not read: {graph:?}"
        );
        let cycles = cycles(&graph);
        assert!(
            cycles.is_empty(),
            "import cycles among {folder} modules: {cycles:?}\nthe graph: {graph:#?}"
        );
    }
}

/// headway-sunbird's layers, bottom first: each may use only the layers before it.
const SUNBIRD_LAYERS: [&str; 5] = ["error", "config", "wire", "protocol", "client"];

/// Each `(module, layer above it that it uses)` of `graph` against `layers`, bottom first.
fn looking_up(graph: &Graph, layers: &[&str]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (at, layer) in layers.iter().enumerate() {
        for used in graph.get(*layer).into_iter().flatten() {
            if layers[at + 1..].contains(&used.as_str()) {
                found.push((layer.to_string(), used.clone()));
            }
        }
    }
    found
}

#[test]
fn the_sunbird_adapters_layers_only_look_down() {
    let graph = read_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters/sunbird/src"));
    for layer in SUNBIRD_LAYERS {
        assert!(graph.contains_key(layer), "no module {layer}: {graph:?}");
    }
    assert_eq!(
        looking_up(&graph, &SUNBIRD_LAYERS),
        Vec::new(),
        "{graph:#?}"
    );
}

#[test]
fn the_layer_check_finds_a_layer_that_looks_up() {
    let mut graph = Graph::new();
    graph.insert(
        "wire".into(),
        ["error", "protocol"].map(String::from).into(),
    );
    graph.insert(
        "protocol".into(),
        ["config", "client"].map(String::from).into(),
    );
    graph.insert(
        "client".into(),
        ["protocol", "wire"].map(String::from).into(),
    );
    assert_eq!(
        looking_up(&graph, &SUNBIRD_LAYERS),
        [("wire", "protocol"), ("protocol", "client")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .to_vec()
    );
}

#[test]
fn a_cycle_through_a_modules_folder_is_found_in_the_source_text() {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).unwrap();
    let src = std::env::temp_dir().join(format!(
        "headway-module-graph-{}",
        u64::from_le_bytes(random)
    ));
    std::fs::create_dir_all(src.join("sync")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod store;\nmod sync;\n").unwrap();
    std::fs::write(
        src.join("store.rs"),
        "// crate::nothing here\nuse crate::sync::Rounds;\n",
    )
    .unwrap();
    std::fs::write(src.join("sync.rs"), "mod rounds;\n").unwrap();
    std::fs::write(
        src.join("sync/rounds.rs"),
        "fn f() { crate::store::open(); }\n",
    )
    .unwrap();
    let graph = read_graph(&src);
    std::fs::remove_dir_all(&src).unwrap();
    assert_eq!(
        cycles(&graph),
        vec![
            ["store", "sync", "store"].map(String::from).to_vec(),
            ["sync", "store", "sync"].map(String::from).to_vec(),
        ]
    );
}

#[test]
fn a_use_through_the_crate_roots_re_exports_counts_as_a_use_of_the_module() {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).unwrap();
    let src = std::env::temp_dir().join(format!(
        "headway-module-graph-{}",
        u64::from_le_bytes(random)
    ));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "mod client;\nmod protocol;\npub use client::{\n    Adapter as SunbirdAdapter,\n    Config,\n};\npub use protocol::Push;\n",
    )
    .unwrap();
    std::fs::write(src.join("protocol.rs"), "use crate::SunbirdAdapter;\n").unwrap();
    std::fs::write(src.join("client.rs"), "use crate::Push;\n").unwrap();
    let graph = read_graph(&src);
    std::fs::remove_dir_all(&src).unwrap();
    assert_eq!(graph["protocol"], ["client".to_string()].into());
    assert_eq!(
        looking_up(&graph, &SUNBIRD_LAYERS),
        vec![("protocol".to_string(), "client".to_string())]
    );
    assert!(!cycles(&graph).is_empty());
}

#[test]
fn a_unit_test_module_is_left_out_and_the_code_after_it_is_read() {
    let text = "#[cfg(test)]\nmod tests;\nuse crate::wire::A;\n#[cfg(test)]\nmod tests {\n    use crate::client::B;\n    fn f() { if x { } }\n}\nfn g() { crate::config::c(); }\n";
    assert_eq!(
        named_modules(&without_test_modules(text)),
        ["config", "wire"].map(String::from).into()
    );
}
