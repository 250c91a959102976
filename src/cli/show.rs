//! `check` and `render`: the plan, and the files a backend would write, without touching the
//! running system.

use std::path::Path;

use multihome::backend::{files, networkd, nm};

use super::args::RenderBackend;
use super::{load, open_root, runtime};

pub fn check(config: &Path, json: bool) -> anyhow::Result<()> {
    let plan = load(config)?;
    super::warn_about(&plan);
    if json {
        println!("{}", multihome::json::to_string(&plan)?);
    } else {
        print!("{plan}");
    }
    Ok(())
}

pub fn render(config: &Path, backend: RenderBackend, out: Option<&Path>) -> anyhow::Result<()> {
    let plan = load(config)?;
    // The output root (or this system's, for printing), opened and checked before anything is
    // read under it or written.
    let root = &open_root(out, "--out", "render", true)?;
    let (rendered, owned) = match backend {
        RenderBackend::Networkd => {
            // The files already under the root decide which uplinks get a drop-in; nothing
            // running is asked.
            let (layout, rendered) = runtime()?.block_on(networkd::layout(&plan, root, false))?;
            for w in networkd::warnings(&layout) {
                eprintln!("multihome: warning: {w}");
            }
            (rendered, networkd::names::owned_patterns())
        }
        RenderBackend::NmKeyfile => (nm::keyfile::render(&plan), nm::keyfile::owned_patterns()),
    };
    match out {
        Some(dir) => {
            let changes = files::write_out(root, &rendered, &owned)?;
            for c in &changes {
                let what = if c.is_noop() {
                    "unchanged"
                } else if c.new.is_none() {
                    "removed"
                } else {
                    "wrote"
                };
                println!("{what} {}", dir.join(&c.path).display());
            }
        }
        None => {
            for f in &rendered {
                println!("==> /{} <==\n{}", f.path.display(), f.contents);
            }
        }
    }
    Ok(())
}
