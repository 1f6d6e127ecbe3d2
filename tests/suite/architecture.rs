//! The shape of the source tree, checked: the window never reaches model code, no two files
//! import each other, no module imports one above it, no file or function grows past its limit.
//! Read from `src/` as text (imports are `crate::…`, `super::…` and `self::…` paths).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules from the bottom up: each may import only those before it.
const LAYERS: &[&str] = &[
    "rng",
    "data",
    "kernel_runtime",
    "kernels",
    "model",
    "tokenizer",
    "checkpoint",
    "device",
    "diffusion",
    "train",
    "demo",
    "eval",
    "inside",
    "events",
    "unlearn",
    "session",
    "bench",
    "selftest",
    "finetune",
    "score",
    "gui",
    "cli",
];

/// What `src/gui/` may not name: tensors, checkpoints, tokenizers, backends, kernels.
const NOT_IN_GUI: &[&str] = &[
    "burn",
    "crate::checkpoint",
    "crate::tokenizer",
    "crate::device",
    "crate::kernels",
    "crate::model",
    "crate::diffusion",
    "crate::train",
    "cubecl",
];

const MAX_FILE_LINES: usize = 600;
/// Kernel sources and the statistics tables are long by nature.
const LONG_FILES_ALLOWED: &[&str] = &["src/kernels/", "src/eval/stats.rs"];
const MAX_FN_LINES: usize = 120;

struct Source {
    path: String,
    module: Vec<String>,
    text: String,
}

fn sources() -> Vec<Source> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(Path::new("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let path = p.to_string_lossy().replace('\\', "/");
            let rel = path.trim_start_matches("src/").trim_end_matches(".rs");
            let mut module: Vec<String> = rel.split('/').map(String::from).collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            Source {
                text: std::fs::read_to_string(&p).unwrap(),
                path,
                module,
            }
        })
        .collect()
}

/// Code lines (comments and doc comments left out).
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.trim_start().starts_with("//"))
}

/// Every module path a file names: `crate::a::b`, `super::x`, `self::y`, `use super::{p, q::r}`.
fn named_paths(src: &Source) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for line in code_lines(&src.text) {
        for (start, _) in line.match_indices(['c', 's']) {
            let preceded = line[..start]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            if preceded {
                continue;
            }
            let rest = &line[start..];
            let (mut base, mut tail) = if let Some(r) = rest.strip_prefix("crate::") {
                (Vec::new(), r)
            } else if let Some(r) = rest.strip_prefix("self::") {
                (src.module.clone(), r)
            } else if rest.starts_with("super::") {
                (src.module.clone(), rest)
            } else {
                continue;
            };
            // `super` of a file module and of a folder module (mod.rs) is its parent.
            while let Some(r) = tail.strip_prefix("super::") {
                base.pop();
                tail = r;
            }
            let items: Vec<&str> = match tail.strip_prefix('{') {
                Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
                None => vec![tail],
            };
            for item in items {
                let mut p = base.clone();
                p.extend(segments(item.trim()));
                out.push(p);
            }
        }
    }
    out
}

fn segments(path: &str) -> Vec<String> {
    path.split("::")
        .map(|s| {
            s.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .take_while(|s| !s.is_empty())
        .collect()
}

/// The source file a named path lands in: its longest prefix that is a module (not the crate root).
fn resolve<'a>(path: &[String], modules: &'a BTreeMap<Vec<String>, String>) -> Option<&'a String> {
    (1..=path.len()).rev().find_map(|n| modules.get(&path[..n]))
}

fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let sources = sources();
    let modules: BTreeMap<Vec<String>, String> = sources
        .iter()
        .filter(|s| !s.module.is_empty())
        .map(|s| (s.module.clone(), s.path.clone()))
        .collect();
    sources
        .iter()
        .map(|s| {
            let targets = named_paths(s)
                .iter()
                .filter_map(|p| resolve(p, &modules))
                .filter(|t| **t != s.path)
                .cloned()
                .collect();
            (s.path.clone(), targets)
        })
        .collect()
}

#[test]
fn the_window_never_names_model_code() {
    let mut found = Vec::new();
    for src in sources().iter().filter(|s| s.path.starts_with("src/gui/")) {
        for (n, line) in src.text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for bad in NOT_IN_GUI {
                let hit = line.match_indices(bad).any(|(i, _)| {
                    let before = line[..i].chars().last();
                    let after = line[i + bad.len()..].chars().next();
                    before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'))
                        && after.is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
                });
                if hit {
                    found.push(format!("{}:{}: {}", src.path, n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the window reaches model code (send the engine session a command instead):\n{}",
        found.join("\n")
    );
}

#[test]
fn no_two_files_import_each_other() {
    let graph = imports();
    let mut pairs = Vec::new();
    for (a, targets) in &graph {
        for b in targets {
            if a < b && graph.get(b).is_some_and(|t| t.contains(a)) {
                pairs.push(format!("{a} <-> {b}"));
            }
        }
    }
    assert!(
        pairs.is_empty(),
        "files importing each other:\n{}",
        pairs.join("\n")
    );
}

#[test]
fn no_module_imports_one_above_it() {
    let rank = |file: &str| -> Option<usize> {
        let top = file
            .trim_start_matches("src/")
            .split('/')
            .next()?
            .trim_end_matches(".rs");
        LAYERS.iter().position(|l| *l == top)
    };
    let graph = imports();
    let mut upward = Vec::new();
    for (a, targets) in &graph {
        let Some(ra) = rank(a) else {
            assert!(
                a == "src/lib.rs" || a == "src/main.rs",
                "{a}: a top-level module missing from LAYERS"
            );
            continue;
        };
        for b in targets {
            if rank(b).is_some_and(|rb| rb > ra) {
                upward.push(format!("{a} -> {b}"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports running back up:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_file_or_function_is_too_long() {
    let mut long = Vec::new();
    for src in sources() {
        let lines: Vec<&str> = src.text.lines().collect();
        if lines.len() > MAX_FILE_LINES
            && !LONG_FILES_ALLOWED.iter().any(|p| src.path.starts_with(p))
        {
            long.push(format!("{}: {} lines", src.path, lines.len()));
        }
        for (start, name, n) in functions(&lines) {
            if n > MAX_FN_LINES {
                long.push(format!("{}:{}: fn {name}: {n} lines", src.path, start + 1));
            }
        }
    }
    assert!(
        long.is_empty(),
        "over {MAX_FILE_LINES} lines a file or {MAX_FN_LINES} a function:\n{}",
        long.join("\n")
    );
}

/// (first line, name, lines from `fn` to its closing brace) of every function with a body.
fn functions(lines: &[&str]) -> Vec<(usize, String, usize)> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t.starts_with("//") {
            continue;
        }
        let words: Vec<&str> = t.split_whitespace().collect();
        let Some(k) = words.iter().position(|w| *w == "fn") else {
            continue;
        };
        let before_ok = words[..k].iter().all(|w| {
            w.starts_with("pub") || matches!(*w, "const" | "async" | "unsafe" | "extern" | "\"C\"")
        });
        if !before_ok || k + 1 >= words.len() {
            continue;
        }
        let name: String = words[k + 1]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let mut depth = 0i64;
        let mut opened = false;
        for (j, l) in lines.iter().enumerate().skip(i) {
            let code = strip_literals(l);
            for c in code.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if !opened && code.trim_end().ends_with(';') {
                break;
            }
            if opened && depth <= 0 {
                out.push((i, name.clone(), j - i + 1));
                break;
            }
        }
    }
    out
}

/// A line without its string and char literals and its trailing comment.
fn strip_literals(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(d) = chars.next() {
                    if d == '\\' {
                        chars.next();
                    } else if d == '"' {
                        break;
                    }
                }
            }
            '\'' => {
                // A char literal ('{', '\'') or a lifetime ('a): skip only the former.
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with('\\') || rest.chars().nth(1) == Some('\'') {
                    while let Some(d) = chars.next() {
                        if d == '\\' {
                            chars.next();
                        } else if d == '\'' {
                            break;
                        }
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => break,
            _ => out.push(c),
        }
    }
    out
}
