//! Where the daemon's (and the hook's) log lines go: to the journal with a priority and
//! structured fields (`IFACE=eth0` on an uplink's lines, so `journalctl IFACE=eth0` shows one
//! uplink's history; each event's `MESSAGE_ID=` and fields, see `daemon::events`), over
//! journald's native protocol, when systemd started us with the journal as stderr, else to stderr
//! as plain lines — the lab and the tests read those, and a terminal wants no timestamps or field
//! dumps.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, filter_fn};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// The target of entries for the journal alone (an event whose words stderr already showed on
/// another line); plain stderr leaves them out.
pub const JOURNAL_ONLY: &str = "multihome::journal";

/// `-v`/`-q` counted: 0 is info (every state change), 1 debug, 2 trace, -1 warnings, -2 errors.
pub fn level(verbose: u8, quiet: u8) -> LevelFilter {
    match i16::from(verbose) - i16::from(quiet) {
        i16::MIN..=-2 => LevelFilter::ERROR,
        -1 => LevelFilter::WARN,
        0 => LevelFilter::INFO,
        1 => LevelFilter::DEBUG,
        2..=i16::MAX => LevelFilter::TRACE,
    }
}

/// Installs the subscriber once, for the whole process.
pub fn init(level: LevelFilter) {
    let journal = stderr_is_the_journal().then(tracing_journald::layer).and_then(Result::ok);
    let registry = tracing_subscriber::registry();
    let result = match journal {
        // No prefix: the fields are the journal's own (`MESSAGE_ID=`, `UPLINK=`), not `F_UPLINK=`.
        Some(layer) => registry.with(layer.with_syslog_identifier("multihome".into()).with_field_prefix(None).with_filter(level)).try_init(),
        None => {
            let stderr = filter_fn(move |m| m.target() != JOURNAL_ONLY && *m.level() <= level);
            registry.with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).event_format(Plain).with_filter(stderr)).try_init()
        }
    };
    // Only a second init (tests that call it twice) fails; the first subscriber stays.
    let _ = result;
}

/// systemd sets `JOURNAL_STREAM=DEV:INODE` for the service's stderr; a process whose stderr was
/// redirected elsewhere since (a shell in the unit, a pipe) must not log past it.
fn stderr_is_the_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(value) = std::env::var("JOURNAL_STREAM") else { return false };
    let Some((dev, ino)) = value.split_once(':') else { return false };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else { return false };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// A line as the daemon always wrote it: the message alone, `warning: `/`error: ` in front of
/// those levels; fields other than the message stay for the journal.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        match *event.metadata().level() {
            Level::ERROR => write!(w, "error: ")?,
            Level::WARN => write!(w, "warning: ")?,
            _ => {}
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        writeln!(w, "{}", message.0)
    }
}

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            use fmt::Write;
            let _ = write!(self.0, "{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_counts_up_and_down_from_info() {
        assert_eq!(level(0, 0), LevelFilter::INFO);
        assert_eq!(level(1, 0), LevelFilter::DEBUG);
        assert_eq!(level(5, 0), LevelFilter::TRACE);
        assert_eq!(level(0, 1), LevelFilter::WARN);
        assert_eq!(level(0, 3), LevelFilter::ERROR);
        assert_eq!(level(1, 1), LevelFilter::INFO);
    }

    #[test]
    fn without_journal_stream_the_journal_is_not_assumed() {
        // SAFETY: no other test reads or writes JOURNAL_STREAM.
        unsafe { std::env::set_var("JOURNAL_STREAM", "1:2") };
        assert!(!stderr_is_the_journal(), "a JOURNAL_STREAM that is not our stderr");
        unsafe { std::env::remove_var("JOURNAL_STREAM") };
        assert!(!stderr_is_the_journal());
    }
}
