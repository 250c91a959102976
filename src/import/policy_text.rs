//! The policy text every import writes, in one style: a header of `#` lines saying where it came
//! from, `[Policy]`, the gateways as `[Probe]` targets, and an `[Uplink]` per uplink with the
//! `#` lines that explain it above its keys. `import ifupdown` and `init` both write through
//! here, so a policy made from any source reads the same. Pure.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// The keys of one `[Uplink]` in routes mode, as an import found them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UplinkKeys {
    pub interface: String,
    pub dhcp4: bool,
    pub dhcp6: bool,
    pub addresses4: Vec<Ipv4Net>,
    pub gateway4: Option<Ipv4Addr>,
    pub addresses6: Vec<Ipv6Net>,
    pub gateway6: Option<Ipv6Addr>,
    pub accept_ra: bool,
}

/// The header comment (one `# ` line each) and `[Policy]` up to `Backend=`.
pub fn header(comments: &[String], backend: &str) -> String {
    let mut text = String::new();
    comments.iter().for_each(|c| writeln!(text, "# {c}").unwrap());
    writeln!(text, "\n[Policy]\nBackend={backend}").unwrap();
    text
}

/// `[Probe]` with the targets (each once, in the order given), explained by `comment`; nothing
/// when there are none.
pub fn write_probe(text: &mut String, comment: &str, targets: &[IpAddr]) {
    if targets.is_empty() {
        return;
    }
    writeln!(text, "\n[Probe]\n# {comment}").unwrap();
    let mut seen: Vec<IpAddr> = Vec::new();
    for t in targets {
        if !seen.contains(t) {
            seen.push(*t);
            writeln!(text, "Target={t}").unwrap();
        }
    }
}

/// One `[Uplink]` at `rank` (0 for the first: `Priority=1`), its `comments` above its keys.
pub fn write_uplink(text: &mut String, comments: &[String], rank: usize, u: &UplinkKeys) {
    writeln!(text, "\n[Uplink]").unwrap();
    comments.iter().for_each(|c| writeln!(text, "# {c}").unwrap());
    writeln!(text, "Interface={}\nPriority={}", u.interface, rank + 1).unwrap();
    match (u.dhcp4, u.dhcp6) {
        (true, true) => writeln!(text, "DHCP=yes").unwrap(),
        (true, false) => writeln!(text, "DHCP=ipv4").unwrap(),
        (false, true) => writeln!(text, "DHCP=ipv6").unwrap(),
        (false, false) => {}
    }
    u.addresses4.iter().for_each(|a| writeln!(text, "Address={a}").unwrap());
    u.addresses6.iter().for_each(|a| writeln!(text, "Address={a}").unwrap());
    if let Some(g) = u.gateway4 {
        writeln!(text, "Gateway={g}").unwrap();
    }
    if let Some(g) = u.gateway6 {
        writeln!(text, "Gateway={g}").unwrap();
    }
    if u.accept_ra {
        writeln!(text, "IPv6AcceptRA=yes").unwrap();
    }
}
