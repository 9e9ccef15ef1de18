//! ARCHITECTURE.md and README.md stay true to the tree (issue 18): every path they cite in
//! backticks (`src/…`, `cli/…`, `adapters/…`, `bindings/…`, `tests/…`, `benches/…`,
//! `fuzz/…`, `scripts/…`) exists, and every `path/to/file.rs::test_name` names a function
//! that file defines. A path the root `.gitignore` names (`fuzz/corpus/`, made by the first
//! fuzz run) is not looked for; a span holding a placeholder or a glob (`<target>`, `*`) is not
//! a path.

use std::path::Path;

/// The folders a cited path starts with.
const ROOTS: [&str; 8] = [
    "src/",
    "cli/",
    "adapters/",
    "bindings/",
    "tests/",
    "benches/",
    "fuzz/",
    "scripts/",
];

/// What a cited path names in the tree.
enum Found {
    Missing,
    Folder,
    File(String),
}

/// The text of every inline code span of a Markdown text, fenced blocks left out.
fn code_spans(doc: &str) -> Vec<String> {
    let mut fenced = false;
    let mut prose = String::new();
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    // The odd pieces between backticks are the code spans.
    prose
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// A code span that cites a path: `(path, test name if it cites one)`.
fn citation(span: &str) -> Option<(&str, Option<&str>)> {
    let span = span.trim();
    if !ROOTS.iter().any(|root| span.starts_with(root)) {
        return None;
    }
    let (path, test) = match span.split_once("::") {
        Some((path, test)) if path.ends_with(".rs") => (path, Some(test)),
        Some(_) => return None,
        None => (span, None),
    };
    let path_like = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c));
    let test_like = test
        .is_none_or(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    (path_like && test_like).then_some((path, test))
}

/// Every citation of `doc` the tree does not hold, as one line each: a missing path, or a
/// test name its file does not define. `ignored` are path prefixes made at run time.
fn stale_citations(doc: &str, ignored: &[String], find: impl Fn(&str) -> Found) -> Vec<String> {
    let mut stale = Vec::new();
    for span in code_spans(doc) {
        let cited = span.trim_start();
        if cited.contains('\n') && ROOTS.iter().any(|root| cited.starts_with(root)) {
            // Markdown shows the line break as a space: the path would not be checked.
            stale.push(format!(
                "`{}` is cut by a line break",
                cited.replace('\n', " ")
            ));
            continue;
        }
        let Some((path, test)) = citation(&span) else {
            continue;
        };
        if ignored
            .iter()
            .any(|prefix| path.starts_with(prefix.as_str()))
        {
            continue;
        }
        match (find(path), test) {
            (Found::Missing, _) => stale.push(format!("`{path}` does not exist")),
            (Found::Folder, Some(test)) => {
                stale.push(format!("`{path}` is a folder, not the file of `{test}`"))
            }
            (Found::File(text), Some(test)) if !defines_fn(&text, test) => {
                stale.push(format!("`{path}` defines no `fn {test}`"))
            }
            _ => {}
        }
    }
    stale.sort();
    stale.dedup();
    stale
}

/// True when `text` holds `fn name` followed by its parameters or generics.
fn defines_fn(text: &str, name: &str) -> bool {
    let needle = format!("fn {name}");
    text.match_indices(&needle).any(|(at, _)| {
        text[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c == '(' || c == '<')
    })
}

/// The root `.gitignore`'s anchored entries (`/fuzz/corpus` → `fuzz/corpus`).
fn ignored_paths(root: &Path) -> Vec<String> {
    std::fs::read_to_string(root.join(".gitignore"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().strip_prefix('/'))
        .map(str::to_string)
        .collect()
}

fn find_in(root: &Path, path: &str) -> Found {
    let full = root.join(path);
    if full.is_dir() {
        Found::Folder
    } else {
        std::fs::read_to_string(&full).map_or(Found::Missing, Found::File)
    }
}

#[test]
fn every_path_and_test_the_architecture_and_readme_cite_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ignored = ignored_paths(root);
    let mut stale = Vec::new();
    for name in ["ARCHITECTURE.md", "README.md"] {
        let doc = std::fs::read_to_string(root.join(name)).unwrap();
        let found = stale_citations(&doc, &ignored, |path| find_in(root, path));
        stale.extend(found.into_iter().map(|line| format!("{name}: {line}")));
    }
    assert!(stale.is_empty(), "stale citations:\n{}", stale.join("\n"));
}

#[test]
fn the_checker_names_a_missing_file_and_a_missing_test() {
    let doc = "\
The store lives in `src/store.rs` (see `src/store/`), and `src/gone.rs` was removed.
Guarded by `tests/store.rs::reopen_keeps_everything` and `tests/store.rs::renamed_test`,
and by `tests/gone.rs::anything`.
```text
src/inside_a_fence.rs is not a citation
```
Not paths: `cargo test --test store`, `tests/fuzz-crashers/<target>/`, `store::tests`.
Made at run time: `fuzz/corpus/load_document`. Cut: `tests/store.rs::a_long
_name`.
";
    let find = |path: &str| match path {
        "src/store.rs" => Found::File("pub struct Store;".into()),
        "src/store/" => Found::Folder,
        "tests/store.rs" => Found::File("#[test]\nfn reopen_keeps_everything() {}".into()),
        _ => Found::Missing,
    };
    let stale = stale_citations(doc, &["fuzz/corpus".to_string()], find);
    assert_eq!(
        stale,
        [
            "`src/gone.rs` does not exist",
            "`tests/gone.rs` does not exist",
            "`tests/store.rs::a_long _name` is cut by a line break",
            "`tests/store.rs` defines no `fn renamed_test`",
        ]
    );
}

#[test]
fn a_test_name_is_found_only_as_a_whole_function_name() {
    let text = "fn reopen_keeps_everything_twice() {}\nfn generic<T>() {}";
    assert!(!defines_fn(text, "reopen_keeps_everything"));
    assert!(defines_fn(text, "reopen_keeps_everything_twice"));
    assert!(defines_fn(text, "generic"));
}
