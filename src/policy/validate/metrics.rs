//! `[Metrics]`: the daemon's OpenMetrics listener (`Listen=`) and node_exporter's textfile
//! (`TextfileDirectory=`), both off unless given. Nothing is bound or opened here: the daemon
//! does that, and says why when it cannot.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};

use super::{Checker, Keys, first};
use crate::policy::Metrics;
use crate::policy::unit_file::Section;

pub(super) const KEYS: Keys = Keys { single: &["Listen", "TextfileDirectory"], repeatable: &[] };

pub(super) fn section(c: &mut Checker, section: &Section) -> Metrics {
    let map = c.entries(section, &KEYS);
    let mut m = Metrics::default();
    if let Some(e) = first(&map, "Listen") {
        match e.value.parse::<SocketAddr>() {
            Ok(a) if a.port() == 0 => {
                c.problem(e.line, format!("Listen={}: port 0 would be a random port no scraper can find; give one, such as 9731", e.value))
            }
            Ok(a) if a.ip().is_multicast() => c.problem(e.line, format!("Listen={}: a multicast address cannot accept a connection", e.value)),
            Ok(a) => m.listen = Some(a),
            Err(_) => c.bad_value(e, "ADDRESS:PORT, such as 127.0.0.1:9731 or [::1]:9731"),
        }
    }
    if let Some(e) = first(&map, "TextfileDirectory") {
        let p = Path::new(&e.value);
        if !p.is_absolute() {
            c.bad_value(e, "an absolute directory, such as /var/lib/prometheus/node-exporter");
        } else if p.components().any(|k| matches!(k, Component::ParentDir)) {
            c.problem(e.line, format!("TextfileDirectory={}: \"..\" is refused; name the directory itself", e.value));
        } else {
            m.textfile_directory = Some(PathBuf::from(&e.value));
        }
    }
    m
}
