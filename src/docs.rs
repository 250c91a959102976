//! The manual page multihome(8) and the bash, zsh and fish completions, generated from the
//! command line's own definition (the clap `Command` of `src/main.rs`), so that they say what
//! `--help` says. `multihome generate-docs --out DIR` writes them under DIR; the copies under
//! `man/` and `completions/` are checked against it by `tests/docs.rs` and shipped in the Debian
//! package. The policy file's page, `man/multihome.conf.5`, is written by hand and checked
//! against the policy parser by the same test.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::{Arg, Command};
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Inline, Roff, bold, italic, roman};

/// The manual page, relative to the output directory.
pub const MAN_PAGE: &str = "man/multihome.8";

/// The completions, relative to the output directory, named as each shell looks them up.
pub const COMPLETIONS: [(Shell, &str); 3] =
    [(Shell::Bash, "completions/multihome.bash"), (Shell::Zsh, "completions/_multihome"), (Shell::Fish, "completions/multihome.fish")];

/// The name the program is installed and completed as.
const NAME: &str = "multihome";

/// The date on the manual pages (this one and `man/multihome.conf.5`): of their last change.
pub const DATE: &str = "2026-12-01";

/// Writes the manual page and the completions under `out`; returns the paths written.
pub fn generate(cmd: Command, out: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut files = vec![(MAN_PAGE, man_page(cmd.clone()))];
    for (shell, path) in COMPLETIONS {
        files.push((path, completion(cmd.clone(), shell)));
    }
    for (path, text) in files {
        let path = out.join(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}

/// The completion script for `shell`.
pub fn completion(cmd: Command, shell: Shell) -> String {
    // clap_complete offers hidden commands too; the one for packagers is left out. clap cannot
    // remove a subcommand, so the command is put together again without it.
    let mut visible = Command::new(NAME)
        .version(env!("CARGO_PKG_VERSION"))
        .about(cmd.get_about().cloned().unwrap_or_default())
        .subcommand_required(cmd.is_subcommand_required_set())
        .args(cmd.get_arguments().cloned())
        .subcommands(cmd.get_subcommands().filter(|c| !c.is_hide_set()).cloned());
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut visible, NAME, &mut buf);
    String::from_utf8(buf).expect("clap_complete writes UTF-8")
}

/// multihome(8): the synopsis of every command, the global options, each command with its
/// options (all from `cmd`), then what the help text does not hold: exit status, files.
pub fn man_page(cmd: Command) -> String {
    let mut cmd = cmd.name(NAME).bin_name(NAME).disable_help_subcommand(true);
    cmd.build();
    // A command with commands of its own (`import ifupdown`) is shown as each of those, named
    // by both words.
    let commands: Vec<(String, &Command, Option<&Command>)> = cmd
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .flat_map(|c| {
            let nested: Vec<&Command> = c.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help").collect();
            if nested.is_empty() {
                vec![(c.get_name().to_string(), c, None)]
            } else {
                nested.into_iter().map(|s| (format!("{} {}", c.get_name(), s.get_name()), s, Some(c))).collect()
            }
        })
        .collect();
    let global: Vec<&str> = cmd.get_arguments().map(|a| a.get_id().as_str()).collect();
    let version = cmd.get_version().unwrap_or_default().to_string();
    let man = || Man::new(cmd.clone()).title("MULTIHOME").section("8").date(DATE).source(format!("{NAME} {version}")).manual("System Administration");

    let mut page = String::from(PREAMBLE);
    page += &rendered(|w| man().render_title(w));
    page += &rendered(|w| man().render_name_section(w));

    let mut synopsis = Roff::new();
    synopsis.control("SH", ["SYNOPSIS"]);
    for (i, (name, sub, _)) in commands.iter().enumerate() {
        if i > 0 {
            synopsis.control("br", []);
        }
        synopsis.text(usage(&cmd, name, sub));
    }
    page += &roff(&synopsis);
    page += DESCRIPTION;
    page += &rendered(|w| man().render_options_section(w));

    let mut section = Roff::new();
    section.control("SH", ["COMMANDS"]);
    page += &roff(&section);
    for (name, sub, parent) in &commands {
        let mut head = Roff::new();
        head.control("SS", [name.as_str()]);
        head.text(usage(&cmd, name, sub));
        head.control("PP", []);
        let about = |c: &Command| c.get_long_about().or_else(|| c.get_about()).map(|a| a.to_string());
        let text: Vec<String> = parent.iter().filter_map(|p| about(p)).chain(about(sub)).collect();
        if !text.is_empty() {
            head.text([roman(text.join(". "))]);
        }
        page += &roff(&head);
        // The command's own options, without the global ones (listed once, above).
        let mut own = (*sub).clone();
        for id in &global {
            if own.get_arguments().any(|a| a.get_id() == *id) {
                own = own.mut_arg(*id, |a| a.hide(true));
            }
        }
        let options = rendered(|w| Man::new(own.clone()).render_options_section(w));
        // An option without help text leaves an empty line, which the page would show.
        for line in options.lines().skip_while(|l| *l == ".SH OPTIONS").filter(|l| !l.is_empty()) {
            page += line;
            page += "\n";
        }
    }
    page += EPILOGUE;
    page
}

/// One command's synopsis line: `multihome [-c CONFIG] NAME [--option VALUE]... ARG` (`name`
/// has both words of a nested command), the
/// global options (those of `root`, bar help and version) first.
fn usage(root: &Command, name: &str, sub: &Command) -> Vec<Inline> {
    let global: Vec<&str> = root.get_arguments().map(|a| a.get_id().as_str()).collect();
    let mut line = vec![bold(NAME)];
    for arg in root.get_arguments().filter(|a| !a.is_hide_set() && a.get_num_args().is_some_and(|n| n.takes_values())) {
        line.push(roman(" "));
        line.extend(synopsis_arg(arg));
    }
    line.push(roman(" "));
    line.push(bold(name));
    for arg in sub.get_arguments().filter(|a| !a.is_hide_set() && !global.contains(&a.get_id().as_str())) {
        line.push(roman(" "));
        line.extend(synopsis_arg(arg));
    }
    line
}

/// `[--long VALUE]`, `[-s VALUE]`, `[--flag]`, `VALUE` or `[VALUE]`.
fn synopsis_arg(arg: &Arg) -> Vec<Inline> {
    let mut out = Vec::new();
    let optional = !arg.is_required_set();
    if optional {
        out.push(roman("["));
    }
    let flag = arg.get_short().map(|s| format!("-{s}")).or_else(|| arg.get_long().map(|l| format!("--{l}")));
    match flag {
        Some(flag) => {
            out.push(bold(flag));
            if arg.get_num_args().is_some_and(|n| n.takes_values()) {
                out.push(roman(" "));
                out.extend(value(arg));
            }
        }
        None => out.extend(value(arg)),
    }
    if optional {
        out.push(roman("]"));
    }
    out
}

/// An argument's value in a synopsis: its possible values (`a|b`), or its name in italics.
fn value(arg: &Arg) -> Vec<Inline> {
    let possible: Vec<_> = arg.get_possible_values().into_iter().filter(|v| !v.is_hide_set()).collect();
    let mut out = Vec::new();
    if possible.is_empty() {
        let name = arg.get_value_names().and_then(|v| v.first()).map_or_else(|| arg.get_id().as_str().to_uppercase(), |n| n.to_string());
        out.push(italic(name));
    } else {
        for (i, v) in possible.iter().enumerate() {
            if i > 0 {
                out.push(roman("|"));
            }
            out.push(bold(v.get_name().to_string()));
        }
    }
    if arg.get_num_args().is_some_and(|n| n.max_values() > 1) {
        out.push(roman("..."));
    }
    out
}

/// The roff crate starts every document with this; the page carries it once.
const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

fn rendered(render: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> String {
    let mut buf = Vec::new();
    render(&mut buf).expect("rendering to memory");
    let text = String::from_utf8(buf).expect("roff writes UTF-8");
    text.strip_prefix(PREAMBLE).map(str::to_owned).unwrap_or(text)
}

fn roff(roff: &Roff) -> String {
    rendered(|w| roff.to_writer(w))
}

/// What the help text does not say: the page's prose, as roff.
const DESCRIPTION: &str = r#".SH DESCRIPTION
\fBmultihome\fR keeps a Linux host with several uplinks (for example wired \fIeth0\fR and
Wi\-Fi \fIwlan1\fR and \fIwlan0\fR, often on one subnet, each with its own address) online.
Every address stays reachable from outside, locally started connections leave through the
most preferred uplink that works, and come back to it when it returns, also when the failure
is silent: a dead gateway or provider behind a live link.
.PP
One policy file, \fI/etc/multihome/multihome.conf\fR (see \fBmultihome.conf\fR(5)), becomes a
routing table per uplink, \fBfrom\fR/\fBto\fR rules and metric\-ordered default routes, realised
by the network manager the system already runs: \fBsystemd\-networkd\fR(8) (\fB.network\fR
files, a sysctl.d and a networkd.conf.d drop\-in) or \fBNetworkManager\fR(8) (the uplinks'
profiles over D\-Bus, inside a checkpoint that rolls back: the profile bound to an uplink's
interface is amended, or \fImultihome\-IFACE\fR created).
.PP
Dispatcher hooks (\fBmultihome dispatch\fR, run by NetworkManager's dispatcher and by
\fBnetworkd\-dispatcher\fR(8)) write the rules of DHCP uplinks when their lease arrives.
The failover daemon (\fBmultihome daemon\fR, the unit \fBmultihome.service\fR) probes each
uplink through that uplink alone and moves new connections off a silently dead one, then back
without flapping. Everything multihome adds at run time carries protocol 77, so it removes
only its own.
"#;

const EPILOGUE: &str = r#".SH EXIT STATUS
.TP
.B 0
Done.
.TP
.B 1
An error; the message names it. Also the dispatcher hook's refusal of input no dispatcher
sends (a value that is not UTF-8, a name the kernel refuses), in one line of the journal.
.TP
.B 2
A usage error: an unknown option or a missing argument.
.TP
.B 3
\fBtry\fR reverted because nobody confirmed in time.
.TP
.B 4
The policy is invalid; every problem is reported with its file, line, key and value, and
nothing was touched.
.TP
.B 5
No daemon answers (\fBstatus\fR, \fBforce\fR, \fBreload\fR).
.TP
.B 6
\fBlab --mode bond\fR on a kernel that cannot make a bond: it explained what it would do.
.SH FILES
.TP
.I /etc/multihome/multihome.conf
The policy (\fBmultihome.conf\fR(5)). The daemon's unit does not start while it is missing.
.TP
.I /usr/share/doc/multihome/examples/seed.conf
An example policy: three uplinks on one subnet, probed through a gateway and a host behind it.
.TP
.I /etc/systemd/network/10\-multihome\-IFACE.network
.TQ
.I /etc/sysctl.d/60\-multihome.conf
.TQ
.I /etc/systemd/networkd.conf.d/60\-multihome.conf
What \fBapply\fR writes for systemd\-networkd. Each starts with a "Generated by multihome"
line; a file without it is never overwritten or removed.
.TP
.I /usr/lib/systemd/system/multihome.service
The failover daemon's unit: \fBmultihome daemon\fR, and \fBmultihome daemon \-\-cleanup\fR
after it stops, however it stopped.
.TP
.I /usr/lib/NetworkManager/dispatcher.d/90\-multihome
.TQ
.I /usr/lib/networkd\-dispatcher/STATE.d/90\-multihome
The dispatcher hooks; each runs \fI/usr/sbin/multihome\fR \fBdispatch\fR. A script of the
same name under \fI/etc/NetworkManager/dispatcher.d\fR or \fI/etc/networkd\-dispatcher\fR
overrides it.
.TP
.I /etc/multihome/events.d/
Event hooks: every executable file here runs on every change of an uplink's state and of the
active uplink, one at a time in lexical order, with a timeout of 10 s, the event in its
environment (\fBMULTIHOME_EVENT\fR, \fBMULTIHOME_UPLINK\fR, \fBMULTIHOME_FAMILY\fR,
\fBMULTIHOME_OLD_STATE\fR, \fBMULTIHOME_NEW_STATE\fR, \fBMULTIHOME_ACTIVE\fR,
\fBMULTIHOME_REASON\fR, ...) and its output in the journal. Dotfiles, \fI*.dpkg\-*\fR and files
without an execute bit are skipped. See \fI/usr/share/doc/multihome/docs/events.md\fR.
.TP
.I /usr/lib/systemd/catalog/multihome.catalog
The journal catalog of the daemon's events: each has its own \fBMESSAGE_ID\fR and the fields
\fBUPLINK\fR, \fBFAMILY\fR, \fBSTATE\fR; \fBjournalctl \-x\fR shows what it means and what to do.
.TP
.I /usr/share/dbus\-1/system.d/org.multihome1.conf
The daemon's bus policy: anyone may read the uplinks' state, only root may change it. The
interface is described in \fI/usr/share/dbus\-1/interfaces/org.multihome1.Daemon.xml\fR.
.SH SEE ALSO
\fBmultihome.conf\fR(5), \fBsystemd\-networkd\fR(8), \fBsystemd.network\fR(5),
\fBNetworkManager\fR(8), \fBnmcli\fR(1), \fBnetworkd\-dispatcher\fR(8), \fBip\-rule\fR(8),
\fBip\-route\fR(8)
"#;
