//! Bar charts as inline SVG, laid out on the server (no JavaScript).
//!
//! Rules: a chart is a title, a description and labelled values; each
//! value carries its own text (money with its currency, counts), so the
//! picture and its table fallback say the same thing. Floats are used for
//! pixel coordinates only; values stay integers (minor units, counts).

/// One bar, laid out: the coordinates are SVG user units as text.
pub(crate) struct Bar {
    pub label: String,
    pub value: String,
    pub x: String,
    pub y: String,
    pub w: String,
    pub h: String,
    pub label_x: String,
    pub label_y: String,
    pub value_x: String,
    pub value_y: String,
}

/// A laid-out chart and what its table fallback lists.
pub(crate) struct Chart {
    /// Unique on the page: names the `<title>` and `<desc>` for `aria-labelledby`.
    pub id: &'static str,
    pub title: String,
    pub desc: String,
    pub width: u32,
    pub height: u32,
    /// Columns (months) rather than rows.
    pub vertical: bool,
    pub label_head: &'static str,
    pub value_head: &'static str,
    pub bars: Vec<Bar>,
}

/// One value of a chart: its label, its size (minor units or a count) and its text.
pub(crate) struct Point {
    pub label: String,
    pub size: i64,
    pub text: String,
}

const WIDTH: u32 = 640;
const ROW: f64 = 28.0;
const LABEL_COLUMN: f64 = 190.0;
const VALUE_COLUMN: f64 = 150.0;
const COLUMN_AREA: f64 = 200.0;

fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// The share of `max` that `size` is, 0–1 (negative sizes draw nothing).
fn share(size: i64, max: i64) -> f64 {
    if max <= 0 || size <= 0 { 0.0 } else { size as f64 / max as f64 }
}

impl Chart {
    /// Horizontal bars, one row each: label, bar, value.
    pub(crate) fn rows(id: &'static str, title: String, desc: String, heads: (&'static str, &'static str), points: Vec<Point>) -> Self {
        let max = points.iter().map(|p| p.size).max().unwrap_or(0);
        let bar_area = f64::from(WIDTH) - LABEL_COLUMN - VALUE_COLUMN;
        let bars = points
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let top = i as f64 * ROW;
                let w = bar_area * share(p.size, max);
                Bar {
                    x: px(LABEL_COLUMN),
                    y: px(top + 4.0),
                    w: px(w),
                    h: px(ROW - 8.0),
                    label_x: px(LABEL_COLUMN - 8.0),
                    label_y: px(top + ROW / 2.0 + 4.0),
                    value_x: px(LABEL_COLUMN + w + 6.0),
                    value_y: px(top + ROW / 2.0 + 4.0),
                    label: p.label,
                    value: p.text,
                }
            })
            .collect::<Vec<_>>();
        let height = (bars.len().max(1) as f64 * ROW) as u32;
        Self { id, title, desc, width: WIDTH, height, vertical: false, label_head: heads.0, value_head: heads.1, bars }
    }

    /// Vertical columns, one per label (months), labels under them.
    pub(crate) fn columns(id: &'static str, title: String, desc: String, heads: (&'static str, &'static str), points: Vec<Point>) -> Self {
        let max = points.iter().map(|p| p.size).max().unwrap_or(0);
        let slot = f64::from(WIDTH) / points.len().max(1) as f64;
        let top = 20.0;
        let bars = points
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let h = COLUMN_AREA * share(p.size, max);
                let left = i as f64 * slot;
                Bar {
                    x: px(left + slot * 0.15),
                    y: px(top + COLUMN_AREA - h),
                    w: px(slot * 0.7),
                    h: px(h),
                    label_x: px(left + slot / 2.0),
                    label_y: px(top + COLUMN_AREA + 16.0),
                    value_x: px(left + slot / 2.0),
                    value_y: px(top + COLUMN_AREA - h - 4.0),
                    label: p.label,
                    value: p.text,
                }
            })
            .collect();
        Self {
            id,
            title,
            desc,
            width: WIDTH,
            height: (top + COLUMN_AREA + 26.0) as u32,
            vertical: true,
            label_head: heads.0,
            value_head: heads.1,
            bars,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(sizes: &[i64]) -> Vec<Point> {
        sizes.iter().enumerate().map(|(i, s)| Point { label: format!("p{i}"), size: *s, text: s.to_string() }).collect()
    }

    #[test]
    fn the_largest_value_fills_the_bar_area_and_the_others_scale() {
        let c = Chart::rows("c", "t".into(), "d".into(), ("a", "b"), pts(&[300, 150, 0, -5]));
        let area = f64::from(WIDTH) - LABEL_COLUMN - VALUE_COLUMN;
        assert_eq!(c.bars[0].w, px(area));
        assert_eq!(c.bars[1].w, px(area / 2.0));
        assert_eq!(c.bars[2].w, "0.0");
        assert_eq!(c.bars[3].w, "0.0", "a negative value draws nothing");
        assert_eq!(c.height, 4 * ROW as u32);
    }

    #[test]
    fn columns_stand_on_one_baseline() {
        let c = Chart::columns("c", "t".into(), "d".into(), ("a", "b"), pts(&[100, 25]));
        let bottom = |b: &Bar| b.y.parse::<f64>().unwrap() + b.h.parse::<f64>().unwrap();
        assert_eq!(bottom(&c.bars[0]), bottom(&c.bars[1]));
        assert_eq!(c.bars[1].h, px(COLUMN_AREA / 4.0));
    }

    #[test]
    fn an_empty_chart_has_room_for_its_message() {
        let c = Chart::rows("c", "t".into(), "d".into(), ("a", "b"), Vec::new());
        assert!(c.bars.is_empty() && c.height > 0);
    }
}
