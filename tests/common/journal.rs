//! A receiver of journald's native protocol, for tests that stand where journald would: a
//! datagram socket at /run/systemd/journal/socket, each datagram one entry of fields, each field
//! either `NAME=value\n` or (for any value, and the only way for one with a newline) `NAME\n`, the
//! value's length as 64-bit little-endian, the value, `\n`
//! (<https://systemd.io/JOURNAL_NATIVE_PROTOCOL/>).

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One entry: its fields by name (a repeated name keeps its last value).
pub type Entry = BTreeMap<String, String>;

/// Parses one datagram; the error names the byte offset where it stopped making sense.
pub fn parse(mut data: &[u8]) -> Result<Entry, String> {
    let mut entry = Entry::new();
    let total = data.len();
    while !data.is_empty() {
        let at = total - data.len();
        let end = data.iter().position(|&b| b == b'\n' || b == b'=').ok_or(format!("offset {at}: a field name without = or newline"))?;
        let name = std::str::from_utf8(&data[..end]).map_err(|e| format!("offset {at}: field name: {e}"))?.to_string();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
            return Err(format!("offset {at}: {name:?} is not a journal field name"));
        }
        let value: &[u8];
        if data[end] == b'=' {
            let rest = &data[end + 1..];
            let stop = rest.iter().position(|&b| b == b'\n').ok_or(format!("offset {at}: {name}= without its newline"))?;
            value = &rest[..stop];
            data = &rest[stop + 1..];
        } else {
            let rest = &data[end + 1..];
            let len: [u8; 8] = rest.get(..8).and_then(|b| b.try_into().ok()).ok_or(format!("offset {at}: {name}: no 8-byte length"))?;
            let len = u64::from_le_bytes(len) as usize;
            let rest = &rest[8..];
            if rest.len() < len + 1 || rest[len] != b'\n' {
                return Err(format!("offset {at}: {name}: a value of {len} bytes without its newline"));
            }
            value = &rest[..len];
            data = &rest[len + 1..];
        }
        entry.insert(name, String::from_utf8_lossy(value).into_owned());
    }
    Ok(entry)
}

/// journald's socket as a test's: bound at `path` (its directory made) and read at once by a
/// thread of its own, as journald does: a datagram socket's queue is short (10 datagrams), and
/// a sender whose queue is full blocks, which would stall the daemon under test.
pub struct Receiver {
    received: Arc<Mutex<Vec<Result<Entry, String>>>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    pub fn bind(path: &Path) -> std::io::Result<Receiver> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let _ = std::fs::remove_file(path);
        let socket = UnixDatagram::bind(path)?;
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        let (received, stop) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
        let (r, s) = (received.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            while !s.load(Ordering::Relaxed) {
                // An empty datagram is a sender's "are you there", no entry.
                if let Ok(n @ 1..) = socket.recv(&mut buf) {
                    let entry = parse(&buf[..n]).map_err(|e| format!("{e}: {:?}", String::from_utf8_lossy(&buf[..n])));
                    r.lock().unwrap().push(entry);
                }
            }
        });
        Ok(Receiver { received, stop })
    }

    /// Every entry received so far; one that did not parse fails the test with the reason.
    pub fn entries(&self) -> Vec<Entry> {
        let all = self.received.lock().unwrap().clone();
        all.into_iter().map(|e| e.unwrap_or_else(|e| panic!("not the native protocol: {e}"))).collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
