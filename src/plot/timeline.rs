//! `multihome lab --plot FILE.svg`: the run's timeline as a picture. One lane per uplink, with a
//! track for each kind of traffic (new IPv4 and IPv6 connections, the open plain TCP and MPTCP
//! connections) drawn where that uplink carried it; outages shaded over every lane and labelled;
//! the faults as dashed lines with their label and the broken time hatched in the uplink's lane;
//! the daemon's verdicts (its state changes) as marks coloured by the new state. Drawn from the
//! same events the text timeline prints (`lab::timeline`), by a pure function.

use std::fmt::Write;
use std::time::Duration;

use super::{LabelRows, Scale, escape, open, text, text_width};
use crate::lab::timeline::{Event, Family, FaultKind, StreamEvent, Timeline};

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 140.0;
const RIGHT: f64 = 30.0;
const TITLE_H: f64 = 34.0;
const LABEL_ROW: f64 = 14.0;
const VERDICT_TRACK: f64 = 26.0;
const TRACK: f64 = 10.0;
const TRACK_GAP: f64 = 4.0;
const LANE_PAD: f64 = 6.0;
/// A white outline behind a label's letters.
const HALO: &str = "stroke=\"white\" stroke-width=\"3\" paint-order=\"stroke\"";

/// The tracks of a lane: what it shows, its colour, and its label.
const TRACKS: [(Track, &str, &str); 4] = [
    (Track::New(Family::V4), "#1f77b4", "new IPv4"),
    (Track::New(Family::V6), "#9467bd", "new IPv6"),
    (Track::Stream("plain TCP"), "#2ca02c", "plain TCP"),
    (Track::Stream("MPTCP"), "#ff7f0e", "MPTCP"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Track {
    New(Family),
    Stream(&'static str),
}

/// A stretch of time on one uplink's track.
#[derive(Debug, Clone, PartialEq)]
struct Segment {
    track: Track,
    uplink: String,
    from: f64,
    to: f64,
}

#[derive(Debug, Clone, PartialEq)]
struct Outage {
    family: Family,
    from: f64,
    to: f64,
    lost: usize,
    /// Still failing when the timeline ended.
    open: bool,
}

/// A daemon's verdict: `uplink` (of `family`) went to `state` at `at`.
#[derive(Debug, Clone, PartialEq)]
struct Verdict {
    at: f64,
    uplink: String,
    family: Family,
    state: String,
}

/// Everything the picture shows, in seconds, derived from the events.
#[derive(Debug, Default)]
struct Scene {
    end: f64,
    segments: Vec<Segment>,
    outages: Vec<Outage>,
    /// Faults: uplink, kind, from, until (repair or end), whether repaired.
    faults: Vec<(String, FaultKind, f64, f64, bool)>,
    verdicts: Vec<Verdict>,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The daemon's line `eth0: up -> degraded (...)` or `eth0 IPv6: ...` as a verdict.
fn verdict(at: f64, line: &str) -> Option<Verdict> {
    let (who, rest) = line.split_once(": ")?;
    let (uplink, family) = match who.strip_suffix(" IPv6") {
        Some(u) => (u, Family::V6),
        None => (who, Family::V4),
    };
    let (_, to) = rest.split_once(" -> ")?;
    let state = to.split([' ', ';']).next()?.to_string();
    (!uplink.contains(' ') && !state.is_empty()).then(|| Verdict { at, uplink: uplink.to_string(), family, state })
}

/// `spans` with the `holes` cut out (both as (from, to)).
fn minus(spans: Vec<(f64, f64)>, holes: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = spans;
    for &(hf, ht) in holes {
        out = out
            .into_iter()
            .flat_map(|(f, t)| if ht <= f || hf >= t { vec![(f, t)] } else { [(f, hf), (ht, t)].into_iter().filter(|(a, b)| b > a).collect() })
            .collect();
    }
    out
}

/// Stretches from each change `(at, uplink)` to the next change or `end`.
fn stretches(changes: &[(f64, String)], end: f64) -> Vec<(String, f64, f64)> {
    changes.iter().enumerate().map(|(k, (at, u))| (u.clone(), *at, changes.get(k + 1).map_or(end, |(next, _)| *next))).collect()
}

impl Scene {
    fn from(timeline: &Timeline) -> Scene {
        let end = secs(timeline.end).max(timeline.events.last().map_or(0.0, |(at, _)| secs(*at)));
        let mut scene = Scene { end, ..Default::default() };
        let mut carriers: [Vec<(f64, String)>; 2] = Default::default();
        let mut via: Vec<(f64, String)> = Vec::new();
        let mut opened: Vec<(&'static str, f64)> = Vec::new();
        let mut stalls: Vec<(&'static str, f64, f64)> = Vec::new();
        let mut stalled: Vec<(&'static str, f64)> = Vec::new();
        for (at, event) in &timeline.events {
            let at = secs(*at);
            match event {
                Event::Fault { uplink, kind, fail: true } => scene.faults.push((uplink.clone(), *kind, at, end, false)),
                Event::Fault { uplink, fail: false, .. } => {
                    if let Some(f) = scene.faults.iter_mut().rev().find(|f| &f.0 == uplink && !f.4) {
                        (f.3, f.4) = (at, true);
                    }
                }
                Event::Traffic { family, uplink, .. } => carriers[*family as usize].push((at, uplink.clone())),
                Event::OutageOver { family, lost, since, until } => {
                    scene.outages.push(Outage { family: *family, from: secs(*since), to: secs(*until), lost: *lost, open: false })
                }
                Event::OutageOpen { family, lost } => scene.outages.push(Outage { family: *family, from: at, to: end, lost: *lost, open: true }),
                Event::Daemon(line) => scene.verdicts.extend(verdict(at, line)),
                Event::Stream(StreamEvent::Open { name, .. }) => opened.push((name, at)),
                Event::Stream(StreamEvent::Via { uplink }) => via.push((at, uplink.clone())),
                Event::Stream(StreamEvent::Stall { name, since }) => stalled.push((name, secs(*since))),
                Event::Stream(StreamEvent::Echoes { name, gap }) => {
                    stalled.retain(|(n, _)| n != name);
                    stalls.push((name, at - secs(*gap), at));
                }
                Event::Stream(_) => {}
            }
        }
        stalls.extend(stalled.iter().map(|(n, since)| (*n, *since, end)));
        for family in [Family::V4, Family::V6] {
            let holes: Vec<(f64, f64)> = scene.outages.iter().filter(|o| o.family == family).map(|o| (o.from, o.to)).collect();
            for (uplink, from, to) in stretches(&carriers[family as usize], end) {
                for (from, to) in minus(vec![(from, to)], &holes) {
                    scene.segments.push(Segment { track: Track::New(family), uplink: uplink.clone(), from, to });
                }
            }
        }
        for (name, at) in opened {
            let holes: Vec<(f64, f64)> = stalls.iter().filter(|s| s.0 == name).map(|s| (s.1, s.2)).collect();
            // The plain connection keeps the source address of the uplink IPv4 left by when it
            // opened; the MPTCP one goes where the timeline saw its data.
            let changes = if name == "MPTCP" {
                via.clone()
            } else {
                let carrier = carriers[0].iter().rev().find(|(t, _)| *t <= at).or(carriers[0].first());
                carrier.map(|(_, u)| vec![(at, u.clone())]).unwrap_or_default()
            };
            for (uplink, from, to) in stretches(&changes, end) {
                for (from, to) in minus(vec![(from.max(at), to)], &holes) {
                    scene.segments.push(Segment { track: Track::Stream(name), uplink: uplink.clone(), from, to });
                }
            }
        }
        scene
    }
}

fn state_colour(state: &str) -> &'static str {
    match state {
        "up" | "forced-up" => "#2ca02c",
        "degraded" | "poor" => "#e6a700",
        "down" | "no-carrier" | "no-address" | "forced-down" => "#d62728",
        "recovering" => "#17becf",
        _ => "#7f7f7f",
    }
}

fn fault_words(kind: FaultKind, fail: bool) -> &'static str {
    match (kind, fail) {
        (FaultKind::Link, true) => "carrier lost",
        (FaultKind::Link, false) => "carrier back",
        (FaultKind::Silent, true) => "fails silently",
        (FaultKind::Silent, false) => "repaired",
        (FaultKind::Silent6, true) => "IPv6 fails silently",
        (FaultKind::Silent6, false) => "IPv6 repaired",
    }
}

fn family_words(family: Family) -> &'static str {
    match family {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

/// The picture of `timeline` over the lanes of `uplinks`, headed by `title`.
pub fn svg(timeline: &Timeline, uplinks: &[&str], title: &str) -> String {
    let scene = Scene::from(timeline);
    let scale = Scale { max: scene.end.max(1.0), from: LEFT, to: WIDTH - RIGHT };
    // Labels at the top: faults and outages, in rows so that none overlaps another.
    let mut labels: Vec<(f64, String, &str)> = Vec::new();
    for (uplink, kind, from, to, repaired) in &scene.faults {
        labels.push((scale.x(*from), format!("{uplink} {}", fault_words(*kind, true)), "#8b0000"));
        if *repaired {
            labels.push((scale.x(*to), format!("{uplink} {}", fault_words(*kind, false)), "#006400"));
        }
    }
    for o in &scene.outages {
        let still = if o.open { ", still at the end" } else { "" };
        let ms = (o.to - o.from) * 1e3;
        labels.push((scale.x(o.from), format!("{} outage: {} lost, {ms:.0} ms{still}", family_words(o.family), o.lost), outage_ink(o.family)));
    }
    labels.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rows = LabelRows::default();
    let placed: Vec<(usize, f64, String, &str)> = labels
        .into_iter()
        .map(|(x, t, c)| {
            let w = text_width(&t, 10.0) + 4.0;
            let start = if runs_past_the_edge(x, &t) { x - w } else { x };
            (rows.place(start, w), x, t, c)
        })
        .collect();
    let lanes_top = TITLE_H + rows.rows() as f64 * LABEL_ROW + 8.0;
    let lane_h = VERDICT_TRACK + TRACKS.len() as f64 * (TRACK + TRACK_GAP) + LANE_PAD;
    let lanes_bottom = lanes_top + uplinks.len() as f64 * lane_h;
    let legend_top = lanes_bottom + 52.0;
    let height = legend_top + 2.0 * 20.0 + 12.0;

    let mut s = open(WIDTH, height, title);
    s.push_str(
        "<defs><pattern id=\"broken\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">\
         <line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#8b0000\" stroke-width=\"1.5\" stroke-opacity=\"0.35\"/></pattern></defs>\n",
    );
    text(&mut s, LEFT, 22.0, 15.0, "start", "font-weight=\"bold\"", title);
    lanes(&mut s, &scene, uplinks, &scale, lanes_top, lane_h);
    // Outages over every lane, faults as dashed lines from their label down.
    for o in &scene.outages {
        let (x0, x1) = (scale.x(o.from), scale.x(o.to));
        let _ = writeln!(
            s,
            "<rect class=\"outage\" x=\"{x0:.1}\" y=\"{lanes_top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" fill-opacity=\"0.22\"/>",
            (x1 - x0).max(1.5),
            lanes_bottom - lanes_top,
            outage_ink(o.family)
        );
    }
    // Lines first, then their labels over them with a white halo, so that a line crossing
    // another's label does not strike it through.
    for (row, x, _, colour) in &placed {
        let y = TITLE_H + *row as f64 * LABEL_ROW + 10.0;
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{lanes_bottom:.1}\" stroke=\"{colour}\" stroke-width=\"1\" stroke-dasharray=\"3,3\"/>",
            y + 2.0
        );
    }
    for (row, x, label, colour) in &placed {
        let y = TITLE_H + *row as f64 * LABEL_ROW + 10.0;
        let ink = format!("fill=\"{colour}\" {HALO}");
        // A label that would run past the right edge ends at its line instead; a white box
        // behind it hides the lines of other labels that cross its row.
        let w = text_width(label, 10.0);
        let left = if runs_past_the_edge(*x, label) { x - 3.0 - w } else { x + 3.0 };
        let _ = writeln!(s, "<rect x=\"{left:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"12\" fill=\"white\"/>", y - 9.5);
        if runs_past_the_edge(*x, label) {
            text(&mut s, x - 3.0, y, 10.0, "end", &ink, label);
        } else {
            text(&mut s, x + 3.0, y, 10.0, "start", &ink, label);
        }
    }
    axis(&mut s, &scale, lanes_bottom);
    legend(&mut s, legend_top);
    s.push_str("</svg>\n");
    s
}

/// Whether a top label starting at `x` would run past the picture's right edge.
fn runs_past_the_edge(x: f64, label: &str) -> bool {
    x + 3.0 + text_width(label, 10.0) > WIDTH - 4.0
}

fn outage_ink(family: Family) -> &'static str {
    match family {
        Family::V4 => "#d62728",
        Family::V6 => "#7b2d8e",
    }
}

/// The lanes: background, names, the tracks' segments, the broken time, the verdicts.
fn lanes(s: &mut String, scene: &Scene, uplinks: &[&str], scale: &Scale, top: f64, lane_h: f64) {
    for (k, uplink) in uplinks.iter().enumerate() {
        let y = top + k as f64 * lane_h;
        let fill = if k % 2 == 0 { "#f3f3f3" } else { "#e9e9e9" };
        let _ = writeln!(s, "<rect class=\"lane\" x=\"{LEFT}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{lane_h:.1}\" fill=\"{fill}\"/>", scale.to - LEFT);
        text(s, 10.0, y + lane_h / 2.0 + 5.0, 14.0, "start", "font-weight=\"bold\"", uplink);
        text(s, LEFT - 6.0, y + 10.0, 9.0, "end", "fill=\"#555\"", "IPv4 verdicts");
        text(s, LEFT - 6.0, y + 21.0, 9.0, "end", "fill=\"#555\"", "IPv6 verdicts");
        for (from, to) in scene.faults.iter().filter(|f| f.0 == *uplink).map(|f| (f.2, f.3)) {
            let (x0, x1) = (scale.x(from), scale.x(to));
            let _ = writeln!(
                s,
                "<rect class=\"broken\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{lane_h:.1}\" fill=\"url(#broken)\"/>",
                (x1 - x0).max(1.0)
            );
        }
        for (t, (track, colour, label)) in TRACKS.iter().enumerate() {
            let ty = y + VERDICT_TRACK + t as f64 * (TRACK + TRACK_GAP);
            text(s, LEFT - 6.0, ty + TRACK - 1.0, 9.0, "end", "fill=\"#555\"", label);
            for seg in scene.segments.iter().filter(|g| g.track == *track && g.uplink == *uplink) {
                let (x0, x1) = (scale.x(seg.from), scale.x(seg.to));
                let _ = writeln!(
                    s,
                    "<rect class=\"carried\" x=\"{x0:.1}\" y=\"{ty:.1}\" width=\"{:.1}\" height=\"{TRACK}\" fill=\"{colour}\"/>",
                    (x1 - x0).max(0.5)
                );
            }
        }
        // Verdicts: a mark per state change, IPv4 above IPv6, named where the name has room
        // before the next mark of that family.
        for family in [Family::V4, Family::V6] {
            let marks: Vec<&Verdict> = scene.verdicts.iter().filter(|v| v.uplink == *uplink && v.family == family).collect();
            let cy = y + if family == Family::V4 { 7.0 } else { 18.0 };
            for (k, v) in marks.iter().enumerate() {
                let x = scale.x(v.at);
                let colour = state_colour(&v.state);
                verdict_mark(s, family, x, cy, colour);
                let next = marks.get(k + 1).map_or(scale.to + RIGHT, |n| scale.x(n.at));
                if x + 7.0 + text_width(&v.state, 9.0) + 4.0 < next {
                    text(s, x + 7.0, cy + 3.0, 9.0, "start", &format!("fill=\"{colour}\" {HALO}"), &v.state);
                }
            }
        }
    }
}

/// A verdict's mark: a circle for IPv4, a diamond for IPv6.
fn verdict_mark(s: &mut String, family: Family, x: f64, cy: f64, colour: &str) {
    match family {
        Family::V4 => {
            let _ = writeln!(s, "<circle class=\"verdict\" cx=\"{x:.1}\" cy=\"{cy:.1}\" r=\"4\" fill=\"{colour}\" stroke=\"black\" stroke-width=\"0.5\"/>");
        }
        Family::V6 => {
            let _ = writeln!(
                s,
                "<rect class=\"verdict\" x=\"{:.1}\" y=\"{:.1}\" width=\"7\" height=\"7\" transform=\"rotate(45 {x:.1} {cy:.1})\" fill=\"{colour}\" stroke=\"black\" stroke-width=\"0.5\"/>",
                x - 3.5,
                cy - 3.5
            );
        }
    }
}

fn axis(s: &mut String, scale: &Scale, y: f64) {
    let _ = writeln!(s, "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"black\"/>", scale.to);
    for t in scale.ticks(12) {
        let x = scale.x(t);
        let _ = writeln!(s, "<line class=\"tick\" x1=\"{x:.1}\" y1=\"{y:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"black\"/>", y + 5.0);
        text(s, x, y + 17.0, 10.0, "middle", "", &super::tick_label(t));
    }
    text(s, (LEFT + scale.to) / 2.0, y + 34.0, 11.0, "middle", "", "time since the first new connection (s)");
}

fn legend(s: &mut String, top: f64) {
    let mut items: Vec<(String, String)> =
        TRACKS.iter().map(|(_, c, l)| (format!("<rect width=\"14\" height=\"9\" y=\"-8\" fill=\"{c}\"/>"), format!("{l} carried"))).collect();
    items.push((format!("<rect width=\"14\" height=\"12\" y=\"-10\" fill=\"{}\" fill-opacity=\"0.3\"/>", outage_ink(Family::V4)), "IPv4 outage".into()));
    items.push((format!("<rect width=\"14\" height=\"12\" y=\"-10\" fill=\"{}\" fill-opacity=\"0.3\"/>", outage_ink(Family::V6)), "IPv6 outage".into()));
    items.push(("<rect width=\"14\" height=\"12\" y=\"-10\" fill=\"url(#broken)\" stroke=\"#999\"/>".into(), "uplink broken (fault to repair)".into()));
    items.push(("<circle cx=\"6\" cy=\"-4\" r=\"4\" fill=\"#fff\" stroke=\"black\"/>".into(), "IPv4 verdict".into()));
    items.push((
        "<rect x=\"2.5\" y=\"-7.5\" width=\"7\" height=\"7\" transform=\"rotate(45 6 -4)\" fill=\"#fff\" stroke=\"black\"/>".into(),
        "IPv6 verdict".into(),
    ));
    for state in ["up", "degraded", "down", "recovering", "unknown"] {
        items.push((format!("<circle cx=\"6\" cy=\"-4\" r=\"4\" fill=\"{}\"/>", state_colour(state)), format!("→ {state}")));
    }
    let (mut x, mut y) = (LEFT, top);
    for (mark, label) in items {
        let w = 20.0 + text_width(&label, 10.0) + 14.0;
        if x + w > WIDTH - RIGHT {
            (x, y) = (LEFT, y + 20.0);
        }
        let _ = writeln!(s, "<g transform=\"translate({x:.1} {y:.1})\">{mark}<text x=\"19\" y=\"0\" font-size=\"10\">{}</text></g>", escape(&label));
        x += w;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn traffic(family: Family, uplink: &str) -> Event {
        let source: IpAddr = if family == Family::V4 { "192.168.178.10".parse().unwrap() } else { "2001:db8::10".parse().unwrap() };
        Event::Traffic { family, uplink: uplink.into(), source }
    }

    /// A silent failure of eth0 at 3 s, repaired at 9 s, as `multihome lab` records it.
    fn failover() -> Timeline {
        let events = vec![
            (at(0), traffic(Family::V4, "eth0")),
            (at(0), traffic(Family::V6, "eth0")),
            (at(10), Event::Stream(StreamEvent::Open { name: "plain TCP", to: "198.51.100.10".parse().unwrap() })),
            (at(10), Event::Stream(StreamEvent::Open { name: "MPTCP", to: "198.51.100.10".parse().unwrap() })),
            (at(500), Event::Stream(StreamEvent::Via { uplink: "eth0".into() })),
            (at(3000), Event::Fault { uplink: "eth0".into(), kind: FaultKind::Silent, fail: true }),
            (at(3110), Event::Stream(StreamEvent::Stall { name: "plain TCP", since: at(3010) })),
            (at(3200), Event::Daemon("eth0: up -> degraded (2 of 3 rounds lost)".into())),
            (at(3350), Event::Daemon("eth0: degraded -> down (3 rounds lost); new connections leave via wlan1".into())),
            (at(3360), Event::Daemon("eth0 IPv6: up -> down (3 rounds lost)".into())),
            (at(3360), Event::OutageOver { family: Family::V4, lost: 36, since: at(3000), until: at(3360) }),
            (at(3360), traffic(Family::V4, "wlan1")),
            (at(3400), Event::OutageOver { family: Family::V6, lost: 40, since: at(3000), until: at(3400) }),
            (at(3400), traffic(Family::V6, "wlan1")),
            (at(3500), Event::Stream(StreamEvent::Via { uplink: "wlan1".into() })),
            (at(9000), Event::Fault { uplink: "eth0".into(), kind: FaultKind::Silent, fail: false }),
            (at(9200), Event::Stream(StreamEvent::Echoes { name: "plain TCP", gap: at(6190) })),
            (at(9400), Event::Daemon("eth0: down -> recovering (an answer)".into())),
            (at(9850), Event::Daemon("eth0: recovering -> up (5 rounds answered); new connections leave via eth0".into())),
            (at(9850), traffic(Family::V4, "eth0")),
            (at(11000), Event::OutageOpen { family: Family::V6, lost: 3 }),
        ];
        Timeline { events, end: at(12000) }
    }

    fn parse(svg: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not XML: {e}\n{svg}"))
    }

    fn with_class<'a>(doc: &'a roxmltree::Document<'a>, class: &str) -> Vec<roxmltree::Node<'a, 'a>> {
        doc.descendants().filter(|n| n.attribute("class") == Some(class)).collect()
    }

    #[test]
    fn a_failover_has_a_lane_per_uplink_and_a_shaded_rect_per_outage() {
        let text = svg(&failover(), &["eth0", "wlan1", "wlan0"], "eth0 fails silently & comes back");
        // MULTIHOME_PLOT_DIR=DIR keeps the picture, to look at it.
        if let Some(dir) = std::env::var_os("MULTIHOME_PLOT_DIR") {
            std::fs::write(std::path::Path::new(&dir).join("timeline-test.svg"), &text).unwrap();
        }
        let doc = parse(&text);
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        assert_eq!(with_class(&doc, "lane").len(), 3);
        assert_eq!(with_class(&doc, "outage").len(), 3, "two outages over and one still open");
        assert_eq!(with_class(&doc, "verdict").len(), 5, "each state change the daemon logged");
        assert_eq!(with_class(&doc, "broken").len(), 1);
        assert!(text.contains("eth0 fails silently &amp; comes back"), "the title is escaped");
        assert!(text.contains("IPv4 outage: 36 lost, 360 ms"), "{text}");
        assert!(text.contains("IPv6 outage: 3 lost, 1000 ms, still at the end"), "{text}");
        assert!(text.contains("eth0 repaired"));
    }

    #[test]
    fn the_time_axis_grows_left_to_right_and_holds_the_run() {
        let doc_text = svg(&failover(), &["eth0", "wlan1", "wlan0"], "t");
        let doc = parse(&doc_text);
        let xs: Vec<f64> = with_class(&doc, "tick").iter().map(|n| n.attribute("x1").unwrap().parse().unwrap()).collect();
        assert!(xs.len() >= 6, "{xs:?}");
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
        assert_eq!(xs[0], LEFT);
        assert!(*xs.last().unwrap() <= WIDTH - RIGHT);
        // Every shape lies inside the picture.
        let width: f64 = doc.root_element().attribute("width").unwrap().parse().unwrap();
        for n in doc.descendants().filter(|n| n.has_tag_name("rect") && n.attribute("class").is_some()) {
            let (x, w): (f64, f64) = (n.attribute("x").unwrap().parse().unwrap(), n.attribute("width").unwrap().parse().unwrap());
            assert!(x >= 0.0 && x + w <= width + 0.1, "{x} + {w} outside {width}");
        }
    }

    #[test]
    fn traffic_is_drawn_on_the_uplink_that_carried_it_with_the_outages_cut_out() {
        let scene = Scene::from(&failover());
        let on = |track: Track, uplink: &str| -> Vec<(f64, f64)> {
            scene.segments.iter().filter(|s| s.track == track && s.uplink == uplink).map(|s| (s.from, s.to)).collect()
        };
        assert_eq!(on(Track::New(Family::V4), "eth0"), vec![(0.0, 3.0), (9.85, 12.0)]);
        assert_eq!(on(Track::New(Family::V4), "wlan1"), vec![(3.36, 9.85)]);
        assert_eq!(on(Track::New(Family::V6), "wlan1"), vec![(3.4, 11.0)]);
        // The plain TCP connection stays on eth0 and stalls; MPTCP moves to wlan1.
        let plain = on(Track::Stream("plain TCP"), "eth0");
        assert_eq!(plain.len(), 2);
        assert!((plain[0].1 - 3.01).abs() < 1e-9 && (plain[1].0 - 9.2).abs() < 1e-9, "{plain:?}");
        assert_eq!(on(Track::Stream("MPTCP"), "wlan1"), vec![(3.5, 12.0)]);
        assert!(on(Track::New(Family::V4), "wlan0").is_empty());
        let states: Vec<&str> = scene.verdicts.iter().map(|v| v.state.as_str()).collect();
        assert_eq!(states, ["degraded", "down", "down", "recovering", "up"]);
        assert_eq!(scene.verdicts[2].family, Family::V6);
    }

    #[test]
    fn an_empty_run_is_still_a_picture() {
        let text = svg(&Timeline::default(), &["eth0"], "nothing");
        let doc = parse(&text);
        assert_eq!(with_class(&doc, "lane").len(), 1);
        assert!(with_class(&doc, "outage").is_empty());
    }
}
