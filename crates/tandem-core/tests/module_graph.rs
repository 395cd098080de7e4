//! No import circles between tandem-core's top-level modules (issue 18).
//!
//! Reads every source file under `src/` (not `lib.rs`, not unit-test
//! modules, not comments), takes each `crate::NAME` path it names
//! (`use crate::{a::X, b}` included) and draws an edge from the file's
//! top-level module (`src/NAME.rs` or `src/NAME/…`) to `NAME` when that
//! is another top-level module. The test fails when that graph has a
//! cycle, naming it, unless every edge of it is in [`ALLOWED`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Edges a cycle may still use, each with why it is left for now. A
/// cycle is reported unless one of its edges is missing from here.
const ALLOWED: &[(&str, &str, &str)] = &[];

type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// tandem-core's `src/`.
fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn the_wire_types_import_only_plain_data() {
    let graph = module_graph(&src());
    let named =
        |module: &str| graph.get(module).map(|edges| edges.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    assert_eq!(named("model"), Vec::<String>::new(), "model is plain data: it imports nothing else of tandem-core");
    assert_eq!(
        named("protocol"),
        ["model"],
        "protocol imports only model: move a type a message carries into model (re-exported where it was)"
    );
}

#[test]
fn top_level_modules_have_no_import_cycle() {
    let src = src();
    let graph = module_graph(&src);
    assert!(graph.contains_key("protocol") && graph.contains_key("store"), "no modules found under {}", src.display());

    let allowed: BTreeSet<(&str, &str)> = ALLOWED.iter().map(|(from, to, _)| (*from, *to)).collect();
    for (from, to) in &allowed {
        assert!(
            graph.get(*from).is_some_and(|edges| edges.contains_key(*to)),
            "ALLOWED lists {from} -> {to}, which no longer exists: remove it"
        );
    }
    // Only edges not allowed can close a reported cycle: drop the allowed
    // ones and look for any cycle left.
    let strict: BTreeMap<&str, Vec<&str>> = graph
        .iter()
        .map(|(from, edges)| {
            let to = edges.keys().map(String::as_str).filter(|to| !allowed.contains(&(from.as_str(), *to))).collect();
            (from.as_str(), to)
        })
        .collect();
    let cycles = cycles(&strict);
    if !cycles.is_empty() {
        let mut text = String::new();
        let mut edges = BTreeSet::new();
        for cycle in &cycles {
            text.push_str(&format!("cycle: {}\n", cycle.join(" -> ")));
            edges.extend(cycle.windows(2).map(|pair| (pair[0], pair[1])));
        }
        text.push_str("where (from -> to: the files of `from` that name `to`):\n");
        for (from, to) in edges {
            let files: Vec<&str> = graph[from][to].iter().map(String::as_str).collect();
            text.push_str(&format!("  {from} -> {to}: {}\n", files.join(", ")));
        }
        panic!("tandem-core's top-level modules import each other in a circle:\n{text}");
    }
}

/// `from -> to -> files where from names to`, for every top-level module.
fn module_graph(src: &Path) -> Graph {
    let modules: BTreeSet<String> = fs::read_dir(src)
        .expect("read src")
        .map(|entry| entry.expect("entry").path())
        .filter_map(|path| {
            let name = path.file_stem()?.to_str()?.to_owned();
            if path.is_dir() || (path.extension()? == "rs" && name != "lib") { Some(name) } else { None }
        })
        .collect();
    let mut graph = Graph::new();
    for file in rust_files(src) {
        let relative = file.strip_prefix(src).expect("under src");
        if relative == Path::new("lib.rs") {
            continue;
        }
        let first = relative.components().next().expect("a component").as_os_str().to_string_lossy();
        let from = first.trim_end_matches(".rs").to_owned();
        let text = without_tests(&without_comments(&fs::read_to_string(&file).expect("read source")));
        let edges = graph.entry(from.clone()).or_default();
        for to in crate_paths(&text) {
            if to != from && modules.contains(&to) {
                edges.entry(to).or_default().insert(relative.display().to_string());
            }
        }
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The text with `//` comments (doc comments included) blanked: an
/// intra-doc link is not an import.
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.trim_start().starts_with("//") {
            true => "",
            false => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The text without `#[cfg(test)]` modules: unit tests may reach for
/// fixtures anywhere without shaping the library's graph.
fn without_tests(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let Some(open) = after.find('{') else { break };
        let head = after["#[cfg(test)]".len()..open].trim_start();
        let is_module = ["mod ", "pub mod ", "pub(crate) mod "].iter().any(|p| head.starts_with(p));
        if !is_module {
            out.push_str("#[cfg(test)]");
            rest = &after["#[cfg(test)]".len()..];
            continue;
        }
        let mut depth = 0usize;
        let mut end = after.len();
        for (i, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The first segment after each `crate::`, and for `crate::{…}` each
/// group member's first segment.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            names.extend(group_members(group));
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            names.insert(name);
        }
    }
    names
}

/// The first segment of each member of a `{…}` group (`a::X, b, c::{…}`).
fn group_members(group: &str) -> Vec<String> {
    let mut members = Vec::new();
    let mut depth = 1usize;
    let mut word = String::new();
    let mut expecting = true;
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => expecting = true,
            c if depth == 1 && expecting && (c.is_alphanumeric() || c == '_') => word.push(c),
            _ if depth == 1 && expecting && !word.is_empty() => {
                members.push(std::mem::take(&mut word));
                expecting = false;
            }
            _ => {}
        }
    }
    if !word.is_empty() {
        members.push(word);
    }
    members
}

/// Every cycle needed to show each edge that lies on one: for each edge
/// `a -> b` that closes a circle, the shortest way back from `b` to `a`,
/// as `a -> b -> … -> a` (each cycle once).
fn cycles<'a>(graph: &BTreeMap<&'a str, Vec<&'a str>>) -> Vec<Vec<&'a str>> {
    let mut found: BTreeSet<Vec<&str>> = BTreeSet::new();
    for (&a, targets) in graph {
        for &b in targets {
            let Some(back) = shortest_path(graph, b, a) else { continue };
            let mut cycle = vec![a];
            cycle.extend(back);
            // The same circle from its smallest module, so each shows once.
            cycle.pop();
            let start = (0..cycle.len()).min_by_key(|&i| cycle[i]).expect("a cycle has a module");
            cycle.rotate_left(start);
            cycle.push(cycle[0]);
            found.insert(cycle);
        }
    }
    found.into_iter().collect()
}

/// The shortest path `from -> … -> to`, both ends included.
fn shortest_path<'a>(graph: &BTreeMap<&'a str, Vec<&'a str>>, from: &'a str, to: &'a str) -> Option<Vec<&'a str>> {
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(node) = queue.pop_front() {
        if node == to {
            let mut path = vec![to];
            let mut at = to;
            while at != from {
                at = parent[at];
                path.push(at);
            }
            path.reverse();
            return Some(path);
        }
        for &next in graph.get(node).map(Vec::as_slice).unwrap_or_default() {
            if next != from && !parent.contains_key(next) {
                parent.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    None
}
