//! The benchmark's figures (benches/failover.rs writes them to docs/bench/ beside the tables of
//! docs/BENCHMARKS.md): horizontal bars, a group per row of a table (a setup, a loss rate, a
//! number of uplinks) and a bar per measure (median, worst, ...), on one axis with its unit.
//! A measure that never happened ("never": nothing noticed the failure) is a hatched bar over the
//! whole axis, so it cannot be mistaken for a small value.

use std::fmt::Write;

use super::{Scale, open, text, text_width};

/// One measured value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Measured(f64),
    /// It did not happen within the run (shown as "never").
    Never,
    /// Not measured for this row ("n/a").
    Missing,
}

/// A figure: `rows` of values, one per `measures`, in `unit` (shown on the axis).
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub title: String,
    pub unit: String,
    pub measures: Vec<String>,
    pub rows: Vec<(String, Vec<Value>)>,
}

const WIDTH: f64 = 900.0;
const RIGHT: f64 = 90.0;
const BAR: f64 = 12.0;
const BAR_GAP: f64 = 2.0;
const ROW_GAP: f64 = 12.0;
const COLOURS: [&str; 6] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf"];

/// The figure as an SVG document.
pub fn svg(figure: &Figure) -> String {
    let left = figure.rows.iter().map(|(l, _)| text_width(l, 11.0)).fold(120.0, f64::max) + 16.0;
    let max = figure.rows.iter().flat_map(|(_, v)| v).filter_map(|v| if let Value::Measured(x) = v { Some(*x) } else { None }).fold(0.0, f64::max);
    let scale = Scale { max: if max > 0.0 { max * 1.08 } else { 1.0 }, from: left, to: WIDTH - RIGHT };
    // The legend under the title: a key per measure, wrapped onto a second row if need be.
    let mut keys: Vec<(f64, f64)> = Vec::new();
    let (mut x, mut y) = (left, 38.0);
    for m in &figure.measures {
        let w = 24.0 + text_width(m, 10.0);
        if x + w > WIDTH - RIGHT && x > left {
            (x, y) = (left, y + 16.0);
        }
        keys.push((x, y));
        x += w;
    }
    let legend_rows = keys.last().map_or(0.0, |k| (k.1 - 38.0) / 16.0 + 1.0);
    let top = 34.0 + legend_rows * 16.0 + 8.0;
    let group_h = figure.measures.len() as f64 * (BAR + BAR_GAP) + ROW_GAP;
    let bottom = top + figure.rows.len() as f64 * group_h;
    let height = bottom + 44.0;

    let mut s = open(WIDTH, height, &figure.title);
    s.push_str(
        "<defs><pattern id=\"never\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">\
         <line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#d62728\" stroke-width=\"2\"/></pattern></defs>\n",
    );
    text(&mut s, 10.0, 22.0, title_size(&figure.title), "start", "font-weight=\"bold\"", &figure.title);
    for (k, (m, &(x, y))) in figure.measures.iter().zip(&keys).enumerate() {
        let _ = writeln!(s, "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"14\" height=\"10\" fill=\"{}\"/>", y - 9.0, COLOURS[k % COLOURS.len()]);
        text(&mut s, x + 18.0, y, 10.0, "start", "", m);
    }
    // Grid and axis first, the bars over them.
    for t in scale.ticks(8) {
        let x = scale.x(t);
        let _ = writeln!(s, "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"#ddd\"/>");
        text(&mut s, x, bottom + 14.0, 10.0, "middle", "", &super::tick_label(t));
    }
    let _ = writeln!(s, "<line x1=\"{left:.1}\" y1=\"{bottom:.1}\" x2=\"{:.1}\" y2=\"{bottom:.1}\" stroke=\"black\"/>", scale.to);
    text(&mut s, (left + scale.to) / 2.0, bottom + 32.0, 11.0, "middle", "", &figure.unit);
    for (r, (label, values)) in figure.rows.iter().enumerate() {
        let y0 = top + r as f64 * group_h + ROW_GAP / 2.0;
        text(&mut s, left - 8.0, y0 + group_h / 2.0 - ROW_GAP / 2.0 + 4.0, 11.0, "end", "", label);
        for (k, value) in values.iter().enumerate() {
            let y = y0 + k as f64 * (BAR + BAR_GAP);
            let colour = COLOURS[k % COLOURS.len()];
            let (width, fill, said) = match value {
                Value::Measured(v) => (scale.x(*v) - left, colour.to_string(), super::tick_label((v * 10.0).round() / 10.0)),
                Value::Never => (scale.to - left, "url(#never)".to_string(), "never".to_string()),
                Value::Missing => (0.0, colour.to_string(), "n/a".to_string()),
            };
            let _ = writeln!(s, "<rect class=\"bar\" x=\"{left:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{BAR}\" fill=\"{fill}\"/>");
            text(&mut s, left + width + 4.0, y + BAR - 2.0, 10.0, "start", "", &said);
        }
    }
    s.push_str("</svg>\n");
    s
}

/// The title's font size: 14 px, smaller for a title that would not fit the figure's width
/// (a bold glyph is wider than [`text_width`]'s estimate, hence the margin).
fn title_size(title: &str) -> f64 {
    let room = WIDTH - 20.0;
    (room / (text_width(title, 1.0) * 1.1)).clamp(8.0, 14.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn carrier() -> Figure {
        Figure {
            title: "Carrier loss on eth0: time until new connections work again".into(),
            unit: "ms".into(),
            measures: vec!["restore median".into(), "restore worst".into()],
            rows: vec![
                ("systemd-networkd + multihome".into(), vec![Value::Measured(0.0), Value::Measured(0.0)]),
                ("NetworkManager alone (same profiles)".into(), vec![Value::Measured(6010.0), Value::Measured(6020.0)]),
                ("systemd-networkd alone".into(), vec![Value::Never, Value::Missing]),
            ],
        }
    }

    /// A long title is drawn smaller, to fit; a short one keeps its size.
    #[test]
    fn a_long_title_is_made_to_fit() {
        let long = "wlan1's access point lost for 6 s, eth0 unplugged: until new connections leave by wlan0, and by wlan1 after the return";
        assert!(title_size(long) < 14.0 && text_width(long, title_size(long)) * 1.1 <= WIDTH - 20.0);
        assert_eq!(title_size(&carrier().title), 14.0);
        let text = svg(&Figure { title: long.into(), ..carrier() });
        assert!(text.contains(&format!("font-size=\"{}\"", title_size(long))), "{text}");
    }

    #[test]
    fn a_bar_per_value_scaled_to_the_largest_and_never_over_the_whole_axis() {
        let text = svg(&carrier());
        if let Some(dir) = std::env::var_os("MULTIHOME_PLOT_DIR") {
            std::fs::write(std::path::Path::new(&dir).join("bars-test.svg"), &text).unwrap();
        }
        let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("not XML: {e}\n{text}"));
        let bars: Vec<_> = doc.descendants().filter(|n| n.attribute("class") == Some("bar")).collect();
        assert_eq!(bars.len(), 6);
        let width = |k: usize| bars[k].attribute("width").unwrap().parse::<f64>().unwrap();
        assert_eq!(width(0), 0.0);
        assert!(width(2) < width(3), "6010 ms is shorter than 6020 ms");
        assert!(width(4) > width(3), "never is longer than any measured value");
        assert_eq!(bars[4].attribute("fill"), Some("url(#never)"));
        assert!(text.contains(">never<") && text.contains(">n/a<") && text.contains(">6020<"));
        let ticks: Vec<f64> = doc.descendants().filter(|n| n.attribute("class") == Some("grid")).map(|n| n.attribute("x1").unwrap().parse().unwrap()).collect();
        assert!(ticks.windows(2).all(|w| w[0] < w[1]) && ticks.len() >= 4, "{ticks:?}");
        let right: f64 = doc.root_element().attribute("width").unwrap().parse().unwrap();
        assert!(bars.iter().all(|b| b.attribute("x").unwrap().parse::<f64>().unwrap() + b.attribute("width").unwrap().parse::<f64>().unwrap() <= right));
    }
}
