//! Desktop authorisation the nmcli way: a caller other than root may change the daemon when
//! polkit says so for the action `org.multihome1.manage` (polkit/org.multihome1.policy: an
//! administrator of the active session, authenticated once). Without polkit on the bus, root
//! only.

use std::collections::HashMap;

use zbus::names::UniqueName;
use zbus::{Connection, Variant, proxy};

/// The action of polkit/org.multihome1.policy.
pub const ACTION: &str = "org.multihome1.manage";
const POLKIT: &str = "org.freedesktop.PolicyKit1";
/// CheckAuthorization's flag: polkit may ask the user (through their session's agent).
const ALLOW_USER_INTERACTION: u32 = 1;

#[proxy(
    interface = "org.freedesktop.PolicyKit1.Authority",
    default_service = "org.freedesktop.PolicyKit1",
    default_path = "/org/freedesktop/PolicyKit1/Authority"
)]
trait Authority {
    /// Returns (is_authorized, is_challenge, details).
    fn check_authorization(
        &self,
        subject: &(&str, HashMap<&str, Variant<'_>>),
        action_id: &str,
        details: &HashMap<&str, &str>,
        flags: u32,
        cancellation_id: &str,
    ) -> zbus::Result<(bool, bool, HashMap<String, String>)>;
}

/// polkit's answer for the caller `sender`; `Err` with the reason when it is no, or when polkit
/// does not run.
pub async fn check(conn: &Connection, sender: &UniqueName<'_>) -> Result<(), String> {
    if !crate::bus::has_owner(conn, POLKIT).await.unwrap_or(false) {
        return Err("polkit is not running".into());
    }
    let authority = AuthorityProxy::new(conn).await.map_err(|e| format!("polkit: {e}"))?;
    let subject = ("system-bus-name", HashMap::from([("name", Variant::from(sender.as_str()))]));
    let (authorized, challenge, _) =
        authority.check_authorization(&subject, ACTION, &HashMap::new(), ALLOW_USER_INTERACTION, "").await.map_err(|e| format!("polkit: {e}"))?;
    match (authorized, challenge) {
        (true, _) => Ok(()),
        (false, true) => Err(format!("polkit requires authentication for {ACTION}, and no agent answered")),
        (false, false) => Err(format!("polkit does not allow {ACTION}")),
    }
}
