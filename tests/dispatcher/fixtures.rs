//! Reading the dispatcher fixtures (see main.rs for their format): the fixture test and the
//! property tests (tests/properties) start from the same cases.

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use multihome::dispatch::event::Environment;

pub struct Case {
    pub name: String,
    #[allow(dead_code)] // the property tests read the inputs only
    pub dir: PathBuf,
    pub args: Vec<OsString>,
    pub env: Environment,
}

/// A fixture line as the bytes it stands for: `\xHH` is the byte HH (so a fixture can hold
/// what is not UTF-8), `\n`, `\t` and `\\` as in C.
fn unescape(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut bytes = line.iter().copied();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                let hex = std::str::from_utf8(&hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                out.push(hex.unwrap_or_else(|| panic!("\\xHH in {:?}", String::from_utf8_lossy(line))));
            }
            other => panic!("unknown escape \\{:?} in {:?}", other.map(char::from), String::from_utf8_lossy(line)),
        }
    }
    out
}

fn lines(path: &Path) -> Vec<Vec<u8>> {
    match fs::read(path) {
        // As str::lines: an empty line is an empty value (NetworkManager's empty interface),
        // the last newline ends the last line.
        Ok(bytes) => bytes.strip_suffix(b"\n").unwrap_or(&bytes).split(|&b| b == b'\n').filter(|_| !bytes.is_empty()).map(unescape).collect(),
        Err(_) => Vec::new(),
    }
}

pub fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dispatcher");
    let mut cases: Vec<Case> = fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let dir = e.path();
            let env = lines(&dir.join("env"))
                .into_iter()
                .map(|l| {
                    let eq = l.iter().position(|&b| b == b'=').unwrap_or_else(|| panic!("{}: env line {l:?} has no =", dir.display()));
                    (OsString::from_vec(l[..eq].to_vec()), OsString::from_vec(l[eq + 1..].to_vec()))
                })
                .collect();
            let args = lines(&dir.join("argv")).into_iter().map(OsString::from_vec).collect();
            Case { name: e.file_name().to_string_lossy().into_owned(), args, env, dir }
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(cases.len() >= 40, "fixtures missing: found {}", cases.len());
    cases
}
