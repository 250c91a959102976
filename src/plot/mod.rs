//! Pictures as hand-written SVG: `timeline` draws `multihome lab --plot`'s run, `bars` the
//! benchmark's figures (docs/bench/). Each is a pure function from a value to a string; this
//! module holds what both need: escaping, a text width estimate, label rows that do not overlap,
//! and an axis scale. No plotting crate: a few rectangles, lines and labels are all it takes, and
//! the output stays readable and diffable.

pub mod bars;
pub mod timeline;

use std::fmt::Write;

/// Text escaped for an SVG text node or attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The font every picture uses, and its width per character at `size` px (sans-serif averages
/// a little over half the size; a generous estimate keeps labels from touching).
pub const FONT: &str = "font-family=\"DejaVu Sans, Verdana, sans-serif\"";

pub fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.6
}

/// A `<text>` element at (x, y) with `size` px and extra attributes (`anchor`: start, middle, end).
pub fn text(svg: &mut String, x: f64, y: f64, size: f64, anchor: &str, extra: &str, content: &str) {
    let _ = writeln!(svg, "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{size}\" text-anchor=\"{anchor}\" {extra}>{}</text>", escape(content));
}

/// Opens an SVG document of `width` × `height` px with a white background.
pub fn open(width: f64, height: f64, title: &str) -> String {
    let mut svg = String::new();
    let _ =
        writeln!(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" {FONT}>");
    let _ = writeln!(svg, "<title>{}</title>", escape(title));
    let _ = writeln!(svg, "<rect x=\"0\" y=\"0\" width=\"{width:.0}\" height=\"{height:.0}\" fill=\"white\"/>");
    svg
}

/// Rows for labels placed left to right: each label goes into the first row where it does not
/// overlap the one before it; the row index is returned.
#[derive(Default)]
pub struct LabelRows {
    ends: Vec<f64>,
}

impl LabelRows {
    pub fn place(&mut self, start: f64, width: f64) -> usize {
        const GAP: f64 = 6.0;
        match self.ends.iter().position(|end| *end + GAP <= start) {
            Some(row) => {
                self.ends[row] = start + width;
                row
            }
            None => {
                self.ends.push(start + width);
                self.ends.len() - 1
            }
        }
    }

    pub fn rows(&self) -> usize {
        self.ends.len()
    }
}

/// A linear scale from `0..=max` (data) to `from..=to` (pixels), with tick values at a round
/// step that gives about `ticks` of them.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub max: f64,
    pub from: f64,
    pub to: f64,
}

impl Scale {
    pub fn x(&self, value: f64) -> f64 {
        if self.max <= 0.0 { self.from } else { self.from + (value.clamp(0.0, self.max) / self.max) * (self.to - self.from) }
    }

    /// Tick values from 0 to `max` at a step of 1, 2 or 5 times a power of ten.
    pub fn ticks(&self, ticks: usize) -> Vec<f64> {
        let step = nice_step(self.max / ticks.max(1) as f64);
        (0..).map(|k| k as f64 * step).take_while(|v| *v <= self.max * (1.0 + 1e-9)).collect()
    }
}

/// The smallest of 1, 2, 5 × 10^k at least `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * power).find(|s| *s >= raw * (1.0 - 1e-9)).unwrap_or(10.0 * power)
}

/// A tick value as text: no decimals for whole numbers, else up to two.
pub fn tick_label(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 { format!("{value:.0}") } else { format!("{value:.2}").trim_end_matches('0').to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round_and_ticks_cover_the_range() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(42.0), 50.0);
        let s = Scale { max: 12.0, from: 100.0, to: 700.0 };
        assert_eq!(s.ticks(10), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0]);
        assert_eq!((s.x(0.0), s.x(12.0), s.x(99.0)), (100.0, 700.0, 700.0));
        assert_eq!(tick_label(0.5), "0.5");
        assert_eq!(tick_label(3.0), "3");
    }

    #[test]
    fn labels_that_would_overlap_go_to_another_row() {
        let mut rows = LabelRows::default();
        assert_eq!(rows.place(0.0, 100.0), 0);
        assert_eq!(rows.place(50.0, 100.0), 1);
        assert_eq!(rows.place(120.0, 10.0), 0);
        assert_eq!(rows.rows(), 2);
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
