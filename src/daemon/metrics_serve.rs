//! `[Metrics]`'s two ways out of [`super::metrics`]: a small HTTP/1.1 listener that answers
//! `GET /metrics` (one request per connection, then closed), and the node_exporter textfile,
//! rewritten atomically after every converge that changed something and at least every
//! [`METRICS_TEXTFILE_REFRESH_SECS`]. Both render from the snapshot the bus reads, on tasks of
//! their own (file writes and the MPTCP reading on blocking threads), never on the probes' path.
//!
//! The listener takes input from the network: a request is read up to
//! [`METRICS_MAX_REQUEST`] bytes and [`METRICS_READ_TIMEOUT_MS`], at most
//! [`METRICS_MAX_CONNECTIONS`] at once; anything but `GET /metrics` gets 404 or 405.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};

use super::metrics::{Format, render};
use super::mptcp_view::View;
use super::status_record::Snapshot;
use crate::numbers::{METRICS_MAX_CONNECTIONS, METRICS_MAX_REQUEST, METRICS_READ_TIMEOUT_MS, METRICS_TEXTFILE_REFRESH_SECS};

/// The name node_exporter's textfile collector reads (any `*.prom` in its directory).
pub const TEXTFILE: &str = "multihome.prom";

/// What both ways out render from.
#[derive(Clone)]
pub struct Source {
    pub snapshot: Arc<Mutex<Snapshot>>,
    pub mptcp: View,
}

impl Source {
    /// The exposition now: the snapshot copied under its lock, rendered outside it.
    async fn text(&self, format: Format) -> String {
        let reading = self.mptcp.current().await;
        let mut snapshot = self.snapshot.lock().expect("snapshot lock").clone();
        super::mptcp_view::annotate(&reading, &mut snapshot.uplinks);
        render(&snapshot, env!("CARGO_PKG_VERSION"), format)
    }
}

/// Binds `Listen=` (so a taken or foreign address fails the start, with the address named) and
/// serves it on a task of its own.
pub async fn listen(address: std::net::SocketAddr, source: Source) -> anyhow::Result<()> {
    let listener = TcpListener::bind(address).await.map_err(|e| anyhow::anyhow!("[Metrics] Listen={address}: cannot listen: {e}"))?;
    tracing::info!("metrics: serving GET /metrics on {address}");
    let slots = Arc::new(Semaphore::new(METRICS_MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else { return };
            let (stream, _) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("metrics: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let source = source.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let _ = serve(stream, &source).await;
            });
        }
    });
    Ok(())
}

/// A request's head: what the listener needs of it.
#[derive(Debug, PartialEq)]
struct Request {
    method: String,
    path: String,
    accept: Option<String>,
}

/// The request line and headers of `head` (up to the blank line); `None` when malformed.
fn parse(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut words = lines.next()?.split(' ');
    let (method, target, version) = (words.next()?, words.next()?, words.next()?);
    if !version.starts_with("HTTP/1.") || words.next().is_some() {
        return None;
    }
    let accept = lines.filter_map(|l| l.split_once(':')).find(|(k, _)| k.trim().eq_ignore_ascii_case("accept")).map(|(_, v)| v.trim().to_string());
    // A query string (`?name[]=...`) asks for nothing else here.
    let path = target.split('?').next().unwrap_or_default().to_string();
    Some(Request { method: method.to_string(), path, accept })
}

/// Reads one request's head, bounded in size and time; `Err` with the status to answer.
async fn read_head(stream: &mut TcpStream) -> Result<String, &'static str> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_millis(METRICS_READ_TIMEOUT_MS);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            return String::from_utf8(buf).map_err(|_| "400 Bad Request");
        }
        if buf.len() >= METRICS_MAX_REQUEST {
            return Err("431 Request Header Fields Too Large");
        }
        let n = match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Err(""),
            Ok(Ok(n)) => n,
            Err(_) => return Err("408 Request Timeout"),
        };
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn serve(mut stream: TcpStream, source: &Source) -> std::io::Result<()> {
    let mut head_only = false;
    let (status, content_type, body, allow) = match read_head(&mut stream).await {
        Err("") => return Ok(()), // the client went away
        Err(status) => (status, "text/plain; charset=utf-8", format!("{status}\n"), false),
        Ok(head) => match parse(&head) {
            None => ("400 Bad Request", "text/plain; charset=utf-8", "400 Bad Request\n".to_string(), false),
            Some(r) if r.path != "/metrics" => ("404 Not Found", "text/plain; charset=utf-8", "only /metrics is here\n".to_string(), false),
            Some(r) if r.method != "GET" && r.method != "HEAD" => ("405 Method Not Allowed", "text/plain; charset=utf-8", "GET /metrics\n".to_string(), true),
            Some(r) => {
                let format = Format::from_accept(r.accept.as_deref());
                head_only = r.method == "HEAD";
                ("200 OK", format.content_type(), source.text(format).await, false)
            }
        },
    };
    let allow = if allow { "Allow: GET, HEAD\r\n" } else { "" };
    let head = format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).await?;
    if !head_only {
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await
}

/// Rewrites `dir/multihome.prom` whenever `changed` is notified and at least every
/// [`METRICS_TEXTFILE_REFRESH_SECS`], on a task of its own.
pub fn write_textfile(dir: PathBuf, source: Source, changed: Arc<Notify>) {
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            let text = source.text(Format::Text).await;
            let d = dir.clone();
            let r = tokio::task::spawn_blocking(move || write_atomically(&d, &text)).await.unwrap_or_else(|e| Err(std::io::Error::other(e)));
            match (r, failing) {
                (Err(e), false) => {
                    tracing::warn!("metrics: cannot write {}: {e}; trying again", dir.join(TEXTFILE).display());
                    failing = true;
                }
                (Ok(()), true) => {
                    tracing::info!("metrics: writing {} again", dir.join(TEXTFILE).display());
                    failing = false;
                }
                _ => {}
            }
            let _ = tokio::time::timeout(Duration::from_secs(METRICS_TEXTFILE_REFRESH_SECS), changed.notified()).await;
        }
    });
}

/// A temporary file in the same directory, then a rename: node_exporter never reads half a
/// file. Mode 0644 whatever the daemon's umask (0077): node_exporter runs as another user.
fn write_atomically(dir: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = dir.join(format!(".{TEXTFILE}.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(&tmp)?;
    let written = f.write_all(text.as_bytes()).and_then(|()| f.sync_all());
    drop(f);
    let done = written.and_then(|()| {
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        std::fs::rename(&tmp, dir.join(TEXTFILE))
    });
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_head_is_read_for_its_method_path_and_accept() {
        let r = parse("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nACCEPT: application/openmetrics-text").unwrap();
        assert_eq!(r, Request { method: "GET".into(), path: "/metrics".into(), accept: Some("application/openmetrics-text".into()) });
        assert_eq!(parse("GET /metrics"), None);
        assert_eq!(parse("GET /metrics SPDY/3"), None);
        assert_eq!(parse("GET /metrics HTTP/1.1 extra"), None);
    }

    /// The real listener on loopback (of this test's process): 200 with the OpenMetrics type,
    /// 404, 405, an oversized head refused, a silent client dropped.
    #[tokio::test]
    async fn the_listener_answers_only_get_metrics() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = probe.local_addr().unwrap();
        drop(probe);
        let source = Source { snapshot: Arc::new(Mutex::new(Snapshot::default())), mptcp: View::default() };
        listen(address, source).await.unwrap();
        let ask = |request: Vec<u8>| async move {
            let mut s = TcpStream::connect(address).await.unwrap();
            let _ = s.write_all(&request).await;
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer).await;
            answer
        };
        let ok = ask(b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text; version=1.0.0\r\n\r\n".to_vec()).await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"), "{ok}");
        assert!(ok.contains("multihome_build_info") && ok.ends_with("# EOF\n"), "{ok}");
        assert!(ask(b"GET / HTTP/1.1\r\n\r\n".to_vec()).await.starts_with("HTTP/1.1 404 "));
        let head = ask(b"HEAD /metrics HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n") && !head.contains("Content-Length: 0\r\n"), "{head}");
        assert!(ask(b"POST /metrics HTTP/1.1\r\n\r\n".to_vec()).await.starts_with("HTTP/1.1 405 "));
        let big = [b"GET /metrics HTTP/1.1\r\nX: ".to_vec(), vec![b'a'; METRICS_MAX_REQUEST * 2]].concat();
        assert!(ask(big).await.starts_with("HTTP/1.1 431 "));
        let started = std::time::Instant::now();
        assert!(ask(b"GET /metrics HTTP/1.1\r\n".to_vec()).await.starts_with("HTTP/1.1 408 "));
        assert!(started.elapsed() < Duration::from_millis(METRICS_READ_TIMEOUT_MS * 2));
    }

    #[test]
    fn the_textfile_is_replaced_whole_and_readable_by_others() {
        let dir = std::env::temp_dir().join(format!("multihome-textfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_atomically(&dir, "a 1\n").unwrap();
        write_atomically(&dir, "b 2\n").unwrap();
        let text = std::fs::read_to_string(dir.join(TEXTFILE));
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(TEXTFILE)).unwrap().permissions().mode() & 0o777;
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(text.unwrap(), "b 2\n");
        assert_eq!(names, [std::ffi::OsString::from(TEXTFILE)], "no temporary file left");
        assert_eq!(mode, 0o644);
    }
}
