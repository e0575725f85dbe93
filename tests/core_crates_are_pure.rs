//! A pure core's tests build without the IO stack (issue 16): the core crates
//! may depend on the event contracts and serde, never on librdkafka, an HTTP
//! server or an async runtime. Read from `Cargo.lock`, which lists every
//! package's resolved dependencies (normal, build and dev together), so a
//! dev-dependency that drags in `rdkafka` fails here too.

use std::collections::{BTreeMap, BTreeSet};

/// Crates that only the adapters may pull in.
const IO_CRATES: &[&str] = &[
    "rdkafka",
    "rdkafka-sys",
    "axum",
    "hyper",
    "tokio",
    "reqwest",
    "selfheal-common",
];

/// The pure core crates.
const CORES: &[&str] = &[
    "selfheal-common-core",
    "selfheal-ingest-core",
    "selfheal-detector-core",
    "selfheal-fixer-core",
    "selfheal-triage-core",
];

fn lock_graph() -> BTreeMap<String, Vec<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock");
    let text = std::fs::read_to_string(path).expect("Cargo.lock is committed");
    let lock: toml::Value = text.parse().expect("Cargo.lock parses as TOML");
    let mut graph = BTreeMap::new();
    for pkg in lock["package"].as_array().expect("[[package]] entries") {
        let name = pkg["name"].as_str().expect("package name").to_owned();
        let deps: Vec<String> = pkg
            .get("dependencies")
            .and_then(|d| d.as_array())
            .map(|d| {
                d.iter()
                    // "name" or "name version" when two versions are locked.
                    .filter_map(|v| v.as_str()?.split(' ').next().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        graph.entry(name).or_insert_with(Vec::new).extend(deps);
    }
    graph
}

fn closure(graph: &BTreeMap<String, Vec<String>>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_owned()];
    while let Some(name) = todo.pop() {
        if seen.insert(name.clone()) {
            todo.extend(graph.get(&name).into_iter().flatten().cloned());
        }
    }
    seen
}

#[test]
fn core_crates_do_not_depend_on_the_io_stack() {
    let graph = lock_graph();
    for core in CORES {
        assert!(graph.contains_key(*core), "{core} is not in Cargo.lock");
        let deps = closure(&graph, core);
        let io: Vec<&&str> = IO_CRATES.iter().filter(|c| deps.contains(**c)).collect();
        assert!(io.is_empty(), "{core} depends on {io:?} (directly or not)");
    }
}

#[test]
fn the_check_sees_the_io_stack_where_it_is() {
    // The adapter crate must fail the same check, or the check proves nothing.
    let deps = closure(&lock_graph(), "selfheal-fixer");
    assert!(deps.contains("rdkafka"), "{deps:?}");
    assert!(deps.contains("selfheal-fixer-core"), "{deps:?}");
}
