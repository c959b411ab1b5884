//! The daemon's structure, as ARCHITECTURE.md promises it: no import cycle between the
//! top-level modules of `daemon/src` (a module's sub-files count as the module), the D-Bus
//! views import neither the core nor the VPN tasks, netlink imports nothing of the daemon, and
//! no source file is over 600 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("daemon/src is readable") {
        let p = e.expect("a directory entry").path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to (`bus/objects.rs` → `bus`, `main.rs` → `main`).
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).expect("under src");
    let first = rel.components().next().expect("a path");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_string()
}

/// The top-level modules a source text names through `crate::…`, including `use crate::{a, b}`.
fn crate_refs(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in text.match_indices("crate::") {
        // `tinynm_config::…` and the like are other crates: only a bare `crate::` counts.
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let m = ident(part.trim());
                if !m.is_empty() {
                    out.insert(m);
                }
            }
        } else {
            let m = ident(rest);
            if !m.is_empty() {
                out.insert(m);
            }
        }
    }
    out
}

/// Every top-level module and the top-level modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rs_files(&src(), &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let m = module_of(&f);
        let text = std::fs::read_to_string(&f).expect("a readable source file");
        let refs = crate_refs(&text);
        let e = g.entry(m.clone()).or_default();
        e.extend(refs.into_iter().filter(|r| *r != m));
    }
    g
}

/// A cycle through the graph, if there is one (depth-first search).
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|s| s == n) {
            let mut c = stack[at..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in g.keys() {
        if let Some(c) = visit(n, g, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_import_cycle_between_modules() {
    let g = graph();
    assert!(g.len() > 5, "too few modules found: {g:?}");
    if let Some(c) = find_cycle(&g) {
        panic!("import cycle between daemon modules: {}", c.join(" → "));
    }
}

#[test]
fn layers_import_only_below_them() {
    let g = graph();
    let may = |m: &str, allowed: &[&str]| {
        let uses = g.get(m).cloned().unwrap_or_default();
        let extra: Vec<&String> = uses
            .iter()
            .filter(|u| !allowed.contains(&u.as_str()))
            .collect();
        assert!(
            extra.is_empty(),
            "{m} may import only {allowed:?}, but imports {extra:?}"
        );
    };
    may("netlink", &[]);
    may("store", &[]);
    may("memory", &[]);
    may("broker", &[]);
    may("logging", &[]);
    may("firewall", &[]);
    may("auth", &[]);
    may("dns", &["store"]);
    may("secrets", &["auth"]);
    may("state", &["netlink", "dns"]);
    may("bus", &["state", "auth", "secrets", "dns", "netlink"]);
    may(
        "vpn",
        &[
            "state", "bus", "netlink", "dns", "secrets", "auth", "store", "memory",
        ],
    );
    may(
        "wired",
        &[
            "state", "bus", "netlink", "dns", "vpn", "auth", "store", "memory",
        ],
    );
}

#[test]
fn the_checker_sees_cycles_and_groups() {
    let refs = crate_refs("use crate::{a, b::c};\nfn f() { crate::d::e(); tinynm_crate::x(); }");
    assert_eq!(
        refs,
        ["a", "b", "d"].iter().map(|s| s.to_string()).collect()
    );
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("x".to_string(), BTreeSet::from(["y".to_string()])),
        ("y".to_string(), BTreeSet::from(["x".to_string()])),
    ]
    .into();
    assert!(find_cycle(&g).is_some());
}

#[test]
fn no_source_file_over_600_lines() {
    let mut files = Vec::new();
    rs_files(&src(), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).ok()?.lines().count();
            (n > 600).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "files over 600 lines: {long:?}");
}
