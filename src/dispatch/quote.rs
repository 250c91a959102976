//! Untrusted bytes as they may appear in a refusal: quoted, every byte that is not printable
//! ASCII escaped (`\xHH`, `\n`, `\t`, `\"`, `\\`), and cut after [`MAX_QUOTED`] characters with
//! the value's length said. A refusal goes to the journal as one line; a dispatcher's value
//! (a 128 KiB `IP_ADDRS`, a name with a newline or an escape sequence) must neither make it long
//! nor break it or the terminal that shows it.

use std::fmt::Write;

/// At most this many characters of escaped text between the quotes; the rest is elided.
pub const MAX_QUOTED: usize = 80;

/// `"wlan0"`, `"up\xff"`, or `"10.0.0.1 10.0.0.2 ..."... (131072 bytes)`.
pub fn quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(MAX_QUOTED + 24);
    out.push('"');
    let mut shown = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped = escape(b);
        if shown + escaped.len() > MAX_QUOTED {
            let _ = write!(out, "\"... ({} bytes, {} not shown)", bytes.len(), bytes.len() - i);
            return out;
        }
        shown += escaped.len();
        out.push_str(&escaped);
    }
    out.push('"');
    out
}

/// [`quote`] for text.
pub fn quote_str(text: &str) -> String {
    quote(text.as_bytes())
}

fn escape(b: u8) -> String {
    match b {
        b'"' => "\\\"".into(),
        b'\\' => "\\\\".into(),
        b'\n' => "\\n".into(),
        b'\t' => "\\t".into(),
        0x20..=0x7e => char::from(b).to_string(),
        _ => format!("\\x{b:02x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_is_not_printable_ascii_and_cuts_long_values() {
        assert_eq!(quote(b"wlan0"), "\"wlan0\"");
        assert_eq!(quote(b"up\xff\n\"\\\x1b"), r#""up\xff\n\"\\\x1b""#);
        assert_eq!(quote_str("é"), r#""\xc3\xa9""#);
        let long = vec![b'a'; 131072];
        assert_eq!(quote(&long), format!("\"{}\"... (131072 bytes, 130992 not shown)", "a".repeat(80)));
        // An escape is never cut in half.
        let escapes = vec![0xffu8; 100];
        assert_eq!(quote(&escapes), format!("\"{}\"... (100 bytes, 80 not shown)", "\\xff".repeat(20)));
    }
}
