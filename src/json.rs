//! JSON for scripts (`check --json`, `status --json`): the document itself, with the version of
//! multihome that wrote it, so a script can tell which fields to expect.

use serde::Serialize;

#[derive(Serialize)]
struct Versioned<'a, T: Serialize> {
    version: &'static str,
    #[serde(flatten)]
    body: &'a T,
}

/// `body` as pretty JSON with a leading `"version"` field.
pub fn to_string<T: Serialize>(body: &T) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&Versioned { version: env!("CARGO_PKG_VERSION"), body })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_version_comes_first_and_the_fields_stay_flat() {
        let text = super::to_string(&serde_json::json!({"active": "eth0"})).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["active"], "eth0");
        assert!(text.trim_start_matches(['{', '\n', ' ']).starts_with("\"version\""), "{text}");
    }
}
