//! What the running networkd says about the uplinks' links, from its D-Bus `Describe` (JSON):
//! the properties that [Match] keys other than `Name=` test, and the .network file (and
//! drop-ins) it uses for each. Only on the running system (apply, try, plan on /): an image has
//! no networkd to ask, and then placement works from names alone.

use std::collections::BTreeMap;

use anyhow::Context;
use serde::Deserialize;

use super::dbus::ManagerProxy;
use super::matcher::{Fact, LinkFacts};

/// One link as the running networkd describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveLink {
    pub facts: LinkFacts,
    /// The kernel's index of the link (0 when networkd does not say).
    pub index: u32,
    /// The .network file networkd uses for the link, if any.
    pub network_file: Option<String>,
    pub network_file_dropins: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Described {
    #[serde(default)]
    interfaces: Vec<DescribedLink>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribedLink {
    #[serde(default)]
    index: u32,
    name: String,
    #[serde(default)]
    alternative_names: Vec<String>,
    r#type: Option<String>,
    kind: Option<String>,
    driver: Option<String>,
    path: Option<String>,
    hardware_address: Option<Vec<u8>>,
    permanent_hardware_address: Option<Vec<u8>>,
    network_file: Option<String>,
    #[serde(default)]
    network_file_dropins: Option<Vec<String>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The links of a `Describe` answer, by name.
pub fn parse_describe(json: &str) -> anyhow::Result<BTreeMap<String, LiveLink>> {
    let described: Described = serde_json::from_str(json).context("networkd's Describe answer is not the JSON multihome expects")?;
    Ok(described
        .interfaces
        .into_iter()
        .map(|l| {
            // networkd leaves a key out when the link lacks the property (a physical device has
            // no Kind); Driver and Path it may just not know, so their absence decides nothing.
            let known = |v: Option<String>| v.map_or(Fact::Absent, Fact::Value);
            let maybe = |v: Option<String>| v.map_or(Fact::Unknown, Fact::Value);
            let mac = |v: Option<Vec<u8>>| v.filter(|b| !b.is_empty()).map_or(Fact::Absent, |b| Fact::Value(hex(&b)));
            let facts = LinkFacts {
                name: l.name.clone(),
                alternative_names: l.alternative_names,
                mac: mac(l.hardware_address),
                permanent_mac: mac(l.permanent_hardware_address),
                link_type: maybe(l.r#type),
                kind: known(l.kind),
                driver: maybe(l.driver),
                path: maybe(l.path),
            };
            let link = LiveLink { facts, index: l.index, network_file: l.network_file, network_file_dropins: l.network_file_dropins.unwrap_or_default() };
            (l.name, link)
        })
        .collect())
}

/// Asks the running networkd about its links; an error when it cannot be asked.
pub async fn links() -> anyhow::Result<BTreeMap<String, LiveLink>> {
    let bus = zbus::Connection::system().await.context("cannot connect to the system D-Bus")?;
    let manager = ManagerProxy::new(&bus).await?;
    let json = manager.describe().await.context("org.freedesktop.network1 Describe")?;
    parse_describe(&json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_matching_needs() {
        let json = r#"{"Interfaces":[
            {"Index":2,"Name":"eth0","Type":"ether","Kind":"veth","Driver":"veth","HardwareAddress":[82,84,0,18,52,86],
             "AdministrativeState":"configured","NetworkFile":"/etc/systemd/network/20-wired.network",
             "NetworkFileDropins":["/etc/systemd/network/20-wired.network.d/60-multihome.conf"]},
            {"Index":3,"Name":"wlan0","Type":"wlan","AlternativeNames":["wlp2s0"],"PermanentHardwareAddress":[1,2,3,4,5,6]}
        ]}"#;
        let links = parse_describe(json).unwrap();
        let eth0 = &links["eth0"];
        assert_eq!(eth0.facts.mac, Fact::Value("525400123456".into()));
        assert_eq!((eth0.index, links["wlan0"].index), (2, 3));
        assert_eq!(eth0.facts.kind, Fact::Value("veth".into()));
        assert_eq!(eth0.network_file.as_deref(), Some("/etc/systemd/network/20-wired.network"));
        assert_eq!(eth0.network_file_dropins.len(), 1);
        let wlan0 = &links["wlan0"];
        assert_eq!(wlan0.facts.kind, Fact::Absent);
        assert_eq!(wlan0.facts.driver, Fact::Unknown);
        assert_eq!(wlan0.facts.mac, Fact::Absent);
        assert_eq!(wlan0.facts.permanent_mac, Fact::Value("010203040506".into()));
        assert_eq!(wlan0.facts.alternative_names, ["wlp2s0"]);
        assert_eq!(wlan0.network_file, None);
    }
}
