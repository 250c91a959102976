//! The shape issue 24 asked for, kept: no two files of src/ import each other (directly; a
//! module and its own submodules aside), and no function is longer than 120 lines. Both read
//! the sources as text, as rustfmt leaves them: a `use`/path naming `crate::a::b` or `super::b`
//! outside comments is an import of that module's file; a function runs from its `fn` line to
//! the `}` at the same indentation.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_FUNCTION_LINES: usize = 120;

fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out.sort();
    out
}

/// `src/daemon/mod.rs` -> ["daemon"], `src/daemon/bus.rs` -> ["daemon", "bus"].
fn module_of(path: &Path) -> Vec<String> {
    let rel = path.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("src")).unwrap();
    let mut parts: Vec<String> = rel.with_extension("").iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The file's text without comment lines and without its `#[cfg(test)] mod tests { ... }`.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests {").next().unwrap_or(text);
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// Every path in `code` that starts with `crate::`, `super::` or `self::`, as its segments.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_' || bytes[i - 1] == ':');
        let rest: String = bytes[i..bytes.len().min(i + 8)].iter().collect();
        if starts_word && (rest.starts_with("crate::") || rest.starts_with("super::") || rest.starts_with("self::")) {
            let mut j = i;
            let mut segments = Vec::new();
            let mut current = String::new();
            while j < bytes.len() {
                let c = bytes[j];
                if c.is_alphanumeric() || c == '_' {
                    current.push(c);
                    j += 1;
                } else if c == ':' && bytes.get(j + 1) == Some(&':') {
                    segments.push(std::mem::take(&mut current));
                    j += 2;
                } else {
                    break;
                }
            }
            if !current.is_empty() {
                segments.push(current);
            }
            // `use super::{a, b}`: each of the braced names.
            if bytes.get(j) == Some(&'{') {
                let end = bytes[j..].iter().position(|&c| c == '}').map_or(bytes.len(), |p| j + p);
                let inner: String = bytes[j + 1..end].iter().collect();
                for name in inner.split(',') {
                    let name = name.trim().split("::").next().unwrap_or("").trim().to_string();
                    if !name.is_empty() {
                        out.push(segments.iter().cloned().chain([name]).collect());
                    }
                }
            }
            out.push(segments);
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// The module files each file imports, by module path.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let files = sources();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let me = module_of(file);
        let mut deps = BTreeSet::new();
        for path in paths(&code(&fs::read_to_string(file).unwrap())) {
            let (mut base, rest) = match path[0].as_str() {
                "crate" => (Vec::new(), &path[1..]),
                "self" => (me.clone(), &path[1..]),
                _ => {
                    let ups = path.iter().take_while(|s| *s == "super").count();
                    (me[..me.len().saturating_sub(ups)].to_vec(), &path[ups..])
                }
            };
            // The longest prefix that is a module of its own file.
            let mut found = None;
            for segment in rest {
                base.push(segment.clone());
                if modules.contains(&base) {
                    found = Some(base.clone());
                }
            }
            if let Some(m) = found
                && m != me
            {
                deps.insert(m.join("::"));
            }
        }
        graph.insert(me.join("::"), deps);
    }
    graph
}

#[test]
fn no_two_files_of_src_import_each_other() {
    let graph = imports();
    let mut circles = Vec::new();
    for (a, deps) in &graph {
        for b in deps {
            let nested = b.starts_with(&format!("{a}::")) || a.starts_with(&format!("{b}::")) || a.is_empty() || b.is_empty();
            if a < b && !nested && graph.get(b).is_some_and(|d| d.contains(a)) {
                circles.push(format!("{a} <-> {b}"));
            }
        }
    }
    assert!(circles.is_empty(), "files that import each other (layers import downward):\n{}", circles.join("\n"));
}

/// The check itself finds a circle: two files that import each other are reported.
#[test]
fn the_circle_finder_reads_uses_of_both_forms() {
    let found = paths("use super::{alpha, beta::Gamma};\nlet x = crate::daemon::bus::Thing;\n// use crate::hidden;\n");
    let names: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert!(names.contains(&"super::alpha".to_string()), "{names:?}");
    assert!(names.contains(&"super::beta".to_string()), "{names:?}");
    assert!(names.contains(&"crate::daemon::bus::Thing".to_string()), "{names:?}");
    assert!(paths(&code("// use crate::hidden;\n")).is_empty());
}

/// Functions longer than `MAX_FUNCTION_LINES`, as "file:line name (N lines)".
fn long_functions(path: &Path, text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let signature = trimmed
            .trim_start_matches("pub ")
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("const ")
            .trim_start_matches("async ")
            .trim_start_matches("unsafe ");
        let Some(rest) = signature.strip_prefix("fn ") else { continue };
        if line.trim_end().ends_with(';') {
            continue;
        }
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let closing = format!("{indent}}}");
        let Some(end) = lines[i + 1..].iter().position(|l| l.trim_end() == closing) else { continue };
        let length = end + 2;
        if length > MAX_FUNCTION_LINES {
            out.push(format!("{}:{} {name} ({length} lines)", path.display(), i + 1));
        }
    }
    out
}

#[test]
fn no_function_in_src_is_longer_than_120_lines() {
    let long: Vec<String> = sources().iter().flat_map(|f| long_functions(f, &fs::read_to_string(f).unwrap())).collect();
    assert!(long.is_empty(), "functions over {MAX_FUNCTION_LINES} lines (split them where the steps are):\n{}", long.join("\n"));
}

#[test]
fn the_length_check_counts_a_long_function() {
    let body = "    x();\n".repeat(MAX_FUNCTION_LINES);
    let text = format!("fn short() {{\n}}\n\npub async fn long() {{\n{body}}}\n");
    let found = long_functions(Path::new("t.rs"), &text);
    assert_eq!(found, [format!("t.rs:4 long ({} lines)", MAX_FUNCTION_LINES + 2)]);
}
