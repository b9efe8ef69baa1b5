//! The habits that keep the code easy to read, checked on every `cargo
//! test` (as rust-analyzer's tidy test does): every source file opens with
//! a `//!` header; no library file is over 600 lines and no function 80
//! lines or more, but for the debts listed here, which may only shrink; no
//! library crate's string speaks in a command-line flag (only the binaries
//! know their flags).

use std::path::{Path, PathBuf};

/// Most lines of a library source file.
const MAX_FILE_LINES: usize = 600;

/// Fewest lines of a function that is too long.
const LONG_FUNCTION_LINES: usize = 80;

/// Library files over [`MAX_FILE_LINES`] today, with their length: each
/// may shrink (then lower its number here, or drop it), never grow.
const LONG_FILES: &[(&str, usize)] = &[("crates/acdc/src/discovery.rs", 580), ("crates/mlp/src/sparse_train.rs", 655)];

/// Functions of [`LONG_FUNCTION_LINES`] or more today (file, name, lines):
/// likewise.
const LONG_FUNCTIONS: &[(&str, &str, usize)] = &[
    ("crates/acdc/src/discovery.rs", "discover_with", 99),
    ("crates/present/src/circuit_source.rs", "read_source", 97),
    ("crates/report/tests/figures.rs", "every_kind_of_figure_renders_png_and_svg", 94),
    ("crates/study/src/boolean.rs", "boolean_model", 89),
    ("xtask/src/reproduce.rs", "run", 86),
    ("xtask/tests/export.rs", "a_circuit_exports_as_json_that_names_its_edges_and_as_dot_that_graphviz_renders", 129),
    ("xtask/tests/own_models.rs", "any_model_gets_a_page_and_every_circuit_exports", 131),
    ("devtask/src/check_html.rs", "run", 101),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir`, as paths relative to the repository.
fn sources(dir: &str) -> Vec<(String, String)> {
    fn walk(at: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(at) else { return };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join(dir), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root()).unwrap_or(&p).to_string_lossy().replace("/../", "/");
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (rel.trim_start_matches("../").to_string(), text)
        })
        .collect()
}

/// Every crate's, the binaries' and the Python binding's sources and tests.
fn all_sources() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in ["crates", "xtask", "devtask", "python/src", "benches", "examples"] {
        out.extend(sources(dir));
    }
    out
}

/// The library crates' sources (their `src`, not tests, benches or examples).
fn library_sources() -> Vec<(String, String)> {
    sources("crates").into_iter().filter(|(p, _)| p.contains("/src/")).collect()
}

/// `(name, lines)` of every function in `text`: from its `fn` line to the
/// closing brace at its indentation (rustfmt's layout).
fn functions(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        let indent = line.len() - code.len();
        let Some(at) = code.find("fn ") else { continue };
        let head = &code[..at];
        let words_ok = head
            .split_whitespace()
            .all(|w| matches!(w, "pub" | "const" | "async" | "unsafe" | "extern" | "\"C\"") || w.starts_with("pub("));
        if !words_ok || code.ends_with(';') {
            continue;
        }
        let name: String = code[at + 3..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if name.is_empty() {
            continue;
        }
        // The signature ends at the first line ending in `{` (a body), `;`
        // (a declaration) or `}` (a body on one line).
        let Some(sig) = lines[i..].iter().position(|l| {
            let l = l.trim_end();
            l.ends_with('{') || l.ends_with(';') || l.ends_with('}')
        }) else {
            continue;
        };
        let last = lines[i + sig].trim_end();
        if last.ends_with(';') || last.ends_with('}') {
            continue;
        }
        let close = " ".repeat(indent) + "}";
        let end =
            lines[i + sig + 1..].iter().position(|l| l.starts_with(&close) && l.len() - l.trim_start().len() == indent);
        if let Some(end) = end {
            out.push((name, sig + end + 2));
        }
    }
    out
}

#[test]
fn every_source_file_opens_with_a_header() {
    let missing: Vec<String> =
        all_sources().into_iter().filter(|(_, t)| !t.starts_with("//!")).map(|(p, _)| p).collect();
    assert!(missing.is_empty(), "no `//!` header (say what the file is for): {missing:#?}");
}

#[test]
fn library_files_stay_short_and_listed_ones_only_shrink() {
    let mut wrong = Vec::new();
    for (path, text) in library_sources() {
        let n = text.lines().count();
        let allowed = LONG_FILES.iter().find(|(p, _)| *p == path).map_or(MAX_FILE_LINES, |(_, n)| *n);
        if n > allowed {
            wrong.push(format!("{path}: {n} lines, more than {allowed}"));
        }
    }
    assert!(wrong.is_empty(), "split these by job: {wrong:#?}");
}

#[test]
fn functions_stay_short_and_listed_ones_only_shrink() {
    let mut wrong = Vec::new();
    for (path, text) in all_sources() {
        for (name, n) in functions(&text) {
            let allowed = LONG_FUNCTIONS
                .iter()
                .find(|(p, f, _)| *p == path && *f == name)
                .map_or(LONG_FUNCTION_LINES - 1, |(_, _, n)| *n);
            if n > allowed {
                wrong.push(format!("{path}: fn {name}, {n} lines"));
            }
        }
    }
    assert!(wrong.is_empty(), "split these: {wrong:#?}");
}

#[test]
fn no_library_string_speaks_in_flags() {
    let mut wrong = Vec::new();
    for (path, text) in library_sources() {
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            // Comments may name the flags that reach a function; commands a
            // library runs (git, rustc) take their own, as sbatch's script
            // directives do.
            if code.starts_with("//") || code.contains("command_line(") || code.contains("#SBATCH --") {
                continue;
            }
            let mut in_string = false;
            let bytes = code.as_bytes();
            for (k, &b) in bytes.iter().enumerate() {
                if b == b'"' && (k == 0 || bytes[k - 1] != b'\\') {
                    in_string = !in_string;
                } else if in_string
                    && bytes[k..].starts_with(b"--")
                    && bytes.get(k + 2).is_some_and(u8::is_ascii_lowercase)
                {
                    wrong.push(format!("{path}:{}: {}", i + 1, code.trim()));
                    break;
                }
            }
        }
    }
    assert!(wrong.is_empty(), "a library speaks in its own terms; the binary adds the flags: {wrong:#?}");
}

/// The function finder sees `fn`s at any indentation and their length.
#[test]
fn the_function_finder_measures_functions() {
    let text = "//! x\n\npub fn a() {\n    1;\n}\n\nimpl X {\n    pub(crate) fn b(\n        &self,\n    ) -> u8 {\n        2\n    }\n    fn d(&self) {}\n}\nfn c();\n";
    assert_eq!(functions(text), vec![("a".to_string(), 3), ("b".to_string(), 5)]);
}

/// The modules (a file's stem, or `lib` for the crate root) each module of
/// `src` names through `crate::` (in paths and in `use crate::{a, b}`).
fn module_uses(src: &[(String, String)]) -> Vec<(String, Vec<String>)> {
    let names: Vec<String> =
        src.iter().filter_map(|(p, _)| Path::new(p).file_stem().map(|s| s.to_string_lossy().into_owned())).collect();
    src.iter()
        .map(|(path, text)| {
            let me = Path::new(path).file_stem().unwrap().to_string_lossy().into_owned();
            let code: String =
                text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
            let mut uses = Vec::new();
            let mut rest = code.as_str();
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + "crate::".len()..];
                let group = if let Some(inner) = rest.strip_prefix('{') {
                    let end = inner.find('}').unwrap_or(inner.len());
                    inner[..end].split(',').map(|s| s.trim().split("::").next().unwrap_or("").to_string()).collect()
                } else {
                    vec![rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or("").to_string()]
                };
                for g in group {
                    if g != me && names.contains(&g) && !uses.contains(&g) {
                        uses.push(g);
                    }
                }
            }
            (me, uses)
        })
        .collect()
}

/// A cycle among `graph`'s modules, if there is one.
fn cycle(graph: &[(String, Vec<String>)]) -> Option<Vec<String>> {
    fn visit(
        at: &str,
        graph: &[(String, Vec<String>)],
        path: &mut Vec<String>,
        done: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == at) {
            let mut c = path[i..].to_vec();
            c.push(at.to_string());
            return Some(c);
        }
        if done.iter().any(|d| d == at) {
            return None;
        }
        path.push(at.to_string());
        for next in graph.iter().find(|(m, _)| m == at).map_or(&[][..], |(_, u)| u.as_slice()) {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.push(at.to_string());
        None
    }
    let mut done = Vec::new();
    graph.iter().find_map(|(m, _)| visit(m, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_crate_has_a_circle_of_modules() {
    let mut circles = Vec::new();
    let crates = std::fs::read_dir(root().join("crates")).unwrap();
    let mut dirs: Vec<String> =
        crates.flatten().map(|e| format!("crates/{}/src", e.file_name().to_string_lossy())).collect();
    dirs.extend(["xtask/src".into(), "devtask/src".into(), "python/src".into()]);
    for dir in dirs {
        // The crate root declares and re-exports every module: it is above them all.
        let src: Vec<_> =
            sources(&dir).into_iter().filter(|(p, _)| !p.ends_with("/lib.rs") && !p.ends_with("/main.rs")).collect();
        if let Some(c) = cycle(&module_uses(&src)) {
            circles.push(format!("{dir}: {}", c.join(" -> ")));
        }
    }
    assert!(circles.is_empty(), "module circles: {circles:#?}");
}

#[test]
fn the_circle_finder_finds_circles() {
    let src = |p: &str, t: &str| (format!("crates/x/src/{p}.rs"), t.to_string());
    let ok = [src("a", "use crate::b::X;"), src("b", "use crate::{c, d::Y};"), src("c", ""), src("d", "")];
    assert_eq!(cycle(&module_uses(&ok)), None);
    let circle =
        [src("a", "use crate::b::X;"), src("b", "fn f() { crate::{c}; }"), src("c", "// crate::a\nuse crate::a;")];
    assert_eq!(cycle(&module_uses(&circle)).unwrap(), ["a", "b", "c", "a"]);
}
