//! The seed scenario realised by the real systemd-networkd in the lab: symmetric inbound on
//! every address, ordered outbound failover on carrier loss and failback on return.

use std::time::Duration;

use common::lab::{inbound_is_symmetric, require, seed_fails_over_to_wlan0_and_back};
use multihome::lab::policies::SEED;
use multihome::lab::{Lab, LabOptions, Manager};

#[allow(dead_code)]
mod common;

#[test]
fn seed_is_symmetric_inbound_and_fails_over_in_order() -> anyhow::Result<()> {
    if !require(Manager::Networkd) {
        return Ok(());
    }
    let lab = Lab::start(LabOptions::new(Manager::Networkd, common::binary()))?;
    lab.write_policy(SEED)?;
    let out = lab.multihome_ok(&["apply"])?;
    assert!(out.contains("Applied"), "{out}");
    lab.outbound_settles_on("eth0", Duration::from_secs(15))?;

    // Inbound: each address answers, and the answers leave through the interface owning it.
    inbound_is_symmetric(&lab, 20)?;

    // Outbound: eth0, then wlan1, then wlan0 as links lose carrier; back to eth0 on return.
    lab.set_carrier("eth0", false)?;
    lab.outbound_settles_on("wlan1", Duration::from_secs(3))?;
    seed_fails_over_to_wlan0_and_back(&lab)?;

    // Every key multihome wrote is one this networkd understands.
    let complaints = lab.networkd_complaints();
    assert!(complaints.is_empty(), "networkd complained about multihome's files:\n{}", complaints.join("\n"));

    // Applying twice changes nothing.
    let again = lab.multihome_ok(&["apply"])?;
    assert!(again.contains("Nothing to do"), "second apply: {again}");
    Ok(())
}
