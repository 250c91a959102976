//! What the lab's "Wi-Fi" is: wlan1 and wlan0 are veth pairs (no association, no access point,
//! no wpa_supplicant), also on a kernel with mac80211_hwsim; real 802.11 stations and access
//! points run in the Debian machine of tests/system (wifi.rs, wifi_routes.rs, wifi_bond.rs,
//! wifi_networkmanager.rs), whose kernel has the driver. The lab says so rather than let a reader
//! take its figures for Wi-Fi's.

use std::path::Path;

/// Whether this kernel can make software 802.11 radios: the module is loaded, or built for it.
pub fn kernel_has_hwsim() -> bool {
    if Path::new("/sys/module/mac80211_hwsim").exists() {
        return true;
    }
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else { return false };
    std::fs::read_to_string(Path::new("/lib/modules").join(release.trim()).join("modules.dep"))
        .is_ok_and(|dep| dep.lines().any(|l| l.split(':').next().is_some_and(|m| m.contains("/mac80211_hwsim.ko"))))
}

/// The line `multihome lab` prints about its Wi-Fi uplinks.
pub fn wifi_note(hwsim: bool) -> String {
    let here = if hwsim { "this kernel has mac80211_hwsim, but the lab keeps veths" } else { "this kernel has no mac80211_hwsim" };
    format!(
        "wlan1 and wlan0 are veth pairs, not associated 802.11 stations ({here}): carrier loss is a link going down, not a \
         disassociation. Real Wi-Fi (hostapd access points, wpa_supplicant, NetworkManager Wi-Fi profiles) runs in the \
         Debian machine of tests/system (wifi_*.rs)."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_says_what_the_kernel_has() {
        assert!(wifi_note(false).contains("has no mac80211_hwsim"));
        assert!(wifi_note(true).contains("has mac80211_hwsim, but the lab keeps veths"));
        assert!(wifi_note(true).contains("veth pairs, not associated 802.11 stations"));
    }
}
