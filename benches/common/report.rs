//! What both benchmarks share: the tables of a run as they go into docs/BENCHMARKS.md between
//! their markers, headed by when, where and how they were measured, with their figures; and the
//! small statistics of the tables.

use std::path::Path;

use anyhow::{Context, bail};
use multihome::plot::bars::{self, Figure};

/// The tables of one run, by group, as they go into docs/BENCHMARKS.md, and their figures.
#[derive(Default)]
pub struct Report {
    groups: Vec<(&'static str, String)>,
    /// (group, file name without .svg, figure).
    figures: Vec<(&'static str, String, Figure)>,
}

impl Report {
    /// A line of `group`'s table: printed at once (a long run shows progress) and kept.
    pub fn line(&mut self, group: &'static str, text: impl Into<String>) {
        let text = text.into();
        println!("{text}");
        match self.groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, body)) => {
                body.push_str(&text);
                body.push('\n');
            }
            None => self.groups.push((group, format!("{text}\n"))),
        }
    }

    /// Keeps `figure` of `group`, drawn into docs/bench/NAME.svg when the document is written.
    pub fn figure(&mut self, group: &'static str, name: String, figure: Figure) {
        self.figures.push((group, name, figure));
    }

    /// Replaces what is between `<!-- bench:GROUP -->` and `<!-- /bench:GROUP -->` in `doc` with
    /// this run's table for that group, headed by when, where and how it was measured.
    pub fn write_into(&self, doc: &Path, command: &str, machine: &str) -> anyhow::Result<()> {
        let mut text = std::fs::read_to_string(doc)?;
        let stamp = format!("Measured on {} on {machine}, release build, with `{command}`.", today()?);
        let dir = doc.parent().context("docs/BENCHMARKS.md has no directory")?.join("bench");
        for (group, body) in &self.groups {
            let (begin, end) = (format!("<!-- bench:{group} -->"), format!("<!-- /bench:{group} -->"));
            let (Some(b), Some(e)) = (text.find(&begin), text.find(&end)) else { bail!("{} has no {begin} ... {end} markers", doc.display()) };
            let mut links = String::new();
            for (_, name, figure) in self.figures.iter().filter(|(g, ..)| g == group) {
                std::fs::create_dir_all(&dir).with_context(|| format!("cannot make {}", dir.display()))?;
                let path = dir.join(format!("{name}.svg"));
                std::fs::write(&path, bars::svg(figure)).with_context(|| format!("cannot write {}", path.display()))?;
                println!("wrote {}", path.display());
                links.push_str(&format!("\n![{}](bench/{name}.svg)\n", figure.title));
            }
            text.replace_range(b + begin.len()..e, &format!("\n{stamp}\n\n{body}{links}"));
        }
        std::fs::write(doc, text)?;
        Ok(())
    }
}

pub fn today() -> anyhow::Result<String> {
    let out = std::process::Command::new("date").args(["-u", "+%Y-%m-%d"]).output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Cores, kernel, and the managers' versions: what the figures depend on.
pub fn machine() -> String {
    let first_line = |program: &str, arg: &str| {
        std::process::Command::new(program)
            .arg(arg)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_string())
            .unwrap_or_default()
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = first_line("uname", "-r");
    let systemd = first_line("/lib/systemd/systemd", "--version");
    let nm = first_line("NetworkManager", "--version");
    format!("{cores} cores, Linux {kernel}, {systemd}, NetworkManager {nm}")
}

pub fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

pub fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

pub fn worst<T: Ord + Copy>(v: &[T]) -> T {
    *v.iter().max().expect("runs > 0")
}

// ---- carrier loss --------------------------------------------------------------------------
