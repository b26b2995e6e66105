//! Charts as inline SVG, drawn on the server.
//!
//! Each function returns [`Html`] holding one `<svg>` whose labels went
//! through the escaping of [`ui_w!`](crate::ui_w) like every other value.
//! Colours come from classes in `static/style.css` (the page's
//! Content-Security-Policy allows no inline style); sizes are attributes.
//! Every chart has a `<title>` and a `data-` attribute or two the browser
//! tests read.

use super::html::{Html, num};
use crate::ui_w;

const W: f64 = 640.0;
const H: f64 = 220.0;
const PAD_L: f64 = 52.0;
const PAD_R: f64 = 12.0;
const PAD_T: f64 = 12.0;
const PAD_B: f64 = 34.0;

/// A linear map from data to pixels.
#[derive(Clone, Copy)]
struct Scale {
    d0: f64,
    d1: f64,
    p0: f64,
    p1: f64,
}

impl Scale {
    fn new(mut d0: f64, mut d1: f64, p0: f64, p1: f64) -> Scale {
        if !d0.is_finite() || !d1.is_finite() {
            (d0, d1) = (0.0, 1.0);
        }
        if (d1 - d0).abs() < 1e-12 {
            let pad = if d0 == 0.0 { 1.0 } else { d0.abs() * 0.1 };
            (d0, d1) = (d0 - pad, d1 + pad);
        }
        Scale { d0, d1, p0, p1 }
    }
    fn at(&self, x: f64) -> f64 {
        self.p0 + (x - self.d0) / (self.d1 - self.d0) * (self.p1 - self.p0)
    }
}

fn open(out: &mut Html, class: &str, title: &str, w: f64, h: f64) {
    ui_w!(
        out,
        "<svg class=\"chart {}\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\"><title>{}</title>",
        class,
        w,
        h,
        title,
        title
    );
}

fn y_axis(out: &mut Html, y: Scale, w: f64) {
    for i in 0..=4 {
        let v = y.d0 + (y.d1 - y.d0) * f64::from(i) / 4.0;
        let py = y.at(v);
        ui_w!(
            out,
            "<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/><text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            PAD_L,
            w - PAD_R,
            num(py, 1),
            num(py, 1),
            PAD_L - 4.0,
            num(py + 4.0, 1),
            short(v)
        );
    }
}

/// A number short enough for an axis.
fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", num(v / 1e6, 1))
    } else if a >= 1e4 {
        format!("{}k", num(v / 1e3, 1))
    } else if a >= 100.0 {
        num(v, 0)
    } else {
        num(v, 2)
    }
}

/// Bars per category, stacked from the given series (e.g. predictions and
/// outcomes per day). `labels[i]` names bar `i`; `series` are (name,
/// class, values) with one value per label.
pub fn stacked_bars(title: &str, labels: &[String], series: &[(&str, &str, Vec<f64>)]) -> Html {
    let mut out = Html::new();
    open(&mut out, "bars", title, W, H);
    let totals: Vec<f64> = (0..labels.len()).map(|i| series.iter().map(|s| s.2[i]).sum()).collect();
    let max = totals.iter().copied().fold(0.0, f64::max);
    let y = Scale::new(0.0, max.max(1.0), H - PAD_B, PAD_T);
    y_axis(&mut out, y, W);
    let n = labels.len().max(1) as f64;
    let slot = (W - PAD_L - PAD_R) / n;
    let bw = (slot * 0.8).max(1.0);
    let every = (labels.len() / 8).max(1);
    for (i, label) in labels.iter().enumerate() {
        let x = PAD_L + slot * i as f64 + (slot - bw) / 2.0;
        let mut base = 0.0;
        for (name, class, values) in series {
            let v = values[i];
            if v > 0.0 {
                let (top, bottom) = (y.at(base + v), y.at(base));
                ui_w!(
                    out,
                    "<rect class=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{} {}: {}</title></rect>",
                    class,
                    num(x, 1),
                    num(top, 1),
                    num(bw, 1),
                    num((bottom - top).max(0.5), 1),
                    label,
                    name,
                    v
                );
            }
            base += v;
        }
        if i % every == 0 {
            ui_w!(
                out,
                "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                num(x + bw / 2.0, 1),
                H - PAD_B + 14.0,
                label
            );
        }
    }
    legend(&mut out, series.iter().map(|s| (s.0, s.1)));
    out.lit("</svg>");
    out
}

fn legend<'a>(out: &mut Html, items: impl Iterator<Item = (&'a str, &'a str)>) {
    let mut x = PAD_L;
    for (name, class) in items {
        ui_w!(
            out,
            "<rect class=\"{}\" x=\"{}\" y=\"{}\" width=\"10\" height=\"10\"/><text class=\"tick\" x=\"{}\" y=\"{}\">{}</text>",
            class,
            num(x, 1),
            H - 12.0,
            num(x + 14.0, 1),
            H - 3.0,
            name
        );
        x += 24.0 + 7.0 * name.chars().count() as f64;
    }
}

/// One line of [`lines`]: its name, its CSS class and its points (x, y).
pub type Series<'a> = (String, &'a str, Vec<(f64, f64)>);

/// Lines over time: `series` are (name, class, points (x, y)); `x_labels`
/// are (x, text) ticks.
pub fn lines(title: &str, series: &[Series<'_>], x_labels: &[(f64, String)]) -> Html {
    let mut out = Html::new();
    open(&mut out, "lines", title, W, H);
    let pts = series.iter().flat_map(|s| s.2.iter());
    let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    let xs = Scale::new(x0, x1, PAD_L, W - PAD_R);
    let ys = Scale::new(0.0, y1.max(1e-9) * 1.05, H - PAD_B, PAD_T);
    y_axis(&mut out, ys, W);
    for (x, label) in x_labels {
        ui_w!(
            out,
            "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            num(xs.at(*x), 1),
            H - PAD_B + 14.0,
            label
        );
    }
    for (name, class, points) in series {
        let mut d = String::new();
        for (i, &(x, y)) in points.iter().enumerate() {
            d.push_str(&format!("{}{} {} ", if i == 0 { "M" } else { "L" }, num(xs.at(x), 1), num(ys.at(y), 1)));
        }
        ui_w!(out, "<path class=\"line {}\" d=\"{}\"><title>{}</title></path>", class, d.trim_end(), name);
        for &(x, y) in points {
            ui_w!(
                out,
                "<circle class=\"dot {}\" cx=\"{}\" cy=\"{}\" r=\"2.5\"><title>{}: {}</title></circle>",
                class,
                num(xs.at(x), 1),
                num(ys.at(y), 1),
                name,
                num(y, 4)
            );
        }
    }
    legend(&mut out, series.iter().map(|s| (s.0.as_str(), s.1)));
    out.lit("</svg>");
    out
}

/// One row per item: a point estimate with its interval on a shared axis
/// (credible intervals of trust, calibration factors). `rows` are (label,
/// estimate, low, high); `reference` draws a dashed vertical line (1.0 for
/// a calibration factor).
pub fn intervals(title: &str, rows: &[(String, f64, f64, f64)], reference: Option<f64>) -> Html {
    let mut out = Html::new();
    let row_h = 22.0;
    let h = PAD_T + row_h * rows.len().max(1) as f64 + 24.0;
    let left = 170.0;
    open(&mut out, "intervals", title, W, h);
    let lo = rows.iter().map(|r| r.2.min(r.1)).fold(reference.unwrap_or(f64::INFINITY), f64::min);
    let hi = rows.iter().map(|r| r.3.max(r.1)).fold(reference.unwrap_or(f64::NEG_INFINITY), f64::max);
    let pad = ((hi - lo) * 0.05).max(1e-6);
    let xs = Scale::new(lo - pad, hi + pad, left, W - PAD_R);
    let bottom = h - 20.0;
    for i in 0..=4 {
        let v = xs.d0 + (xs.d1 - xs.d0) * f64::from(i) / 4.0;
        ui_w!(
            out,
            "<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/><text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            num(xs.at(v), 1),
            num(xs.at(v), 1),
            PAD_T,
            bottom,
            num(xs.at(v), 1),
            bottom + 14.0,
            short(v)
        );
    }
    if let Some(r) = reference {
        ui_w!(
            out,
            "<line class=\"reference\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>",
            num(xs.at(r), 1),
            num(xs.at(r), 1),
            PAD_T,
            bottom
        );
    }
    for (i, (label, est, l, u)) in rows.iter().enumerate() {
        let cy = PAD_T + row_h * i as f64 + row_h / 2.0;
        let shown: String = if label.chars().count() > 24 {
            format!("{}…", label.chars().take(23).collect::<String>())
        } else {
            label.clone()
        };
        ui_w!(
            out,
            "<g class=\"interval\" data-label=\"{}\" data-estimate=\"{}\"><title>{}: {} [{}, {}]</title>\
             <text class=\"label\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <line class=\"whisker\" x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/>\
             <circle class=\"estimate\" cx=\"{}\" cy=\"{}\" r=\"4\"/></g>",
            label,
            est,
            label,
            num(*est, 3),
            num(*l, 3),
            num(*u, 3),
            left - 6.0,
            num(cy + 4.0, 1),
            shown,
            num(xs.at(*l), 1),
            num(xs.at(*u), 1),
            num(cy, 1),
            num(cy, 1),
            num(xs.at(*est), 1),
            num(cy, 1)
        );
    }
    out.lit("</svg>");
    out
}

/// Points (x, y, label) with the identity line y = x: predicted against
/// realised, where on the line means the prediction was right.
pub fn scatter_identity(title: &str, x_name: &str, y_name: &str, points: &[(f64, f64, String)]) -> Html {
    let mut out = Html::new();
    let size = 360.0;
    open(&mut out, "scatter", title, size + PAD_L, size + PAD_B);
    let lo = points.iter().map(|p| p.0.min(p.1)).fold(0.0f64, f64::min);
    let hi = points.iter().map(|p| p.0.max(p.1)).fold(1.0f64, f64::max) * 1.05;
    let xs = Scale::new(lo, hi, PAD_L, PAD_L + size - PAD_R);
    let ys = Scale::new(lo, hi, size - PAD_T, PAD_T);
    y_axis(&mut out, ys, PAD_L + size);
    for i in 0..=4 {
        let v = lo + (hi - lo) * f64::from(i) / 4.0;
        ui_w!(
            out,
            "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            num(xs.at(v), 1),
            size + 4.0,
            short(v)
        );
    }
    ui_w!(
        out,
        "<line class=\"reference identity\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"><title>realised = predicted</title></line>",
        num(xs.at(lo), 1),
        num(ys.at(lo), 1),
        num(xs.at(hi), 1),
        num(ys.at(hi), 1)
    );
    for (x, y, label) in points {
        ui_w!(
            out,
            "<circle class=\"dot point\" cx=\"{}\" cy=\"{}\" r=\"3\"><title>{}: {} {}, {} {}</title></circle>",
            num(xs.at(*x), 1),
            num(ys.at(*y), 1),
            label,
            x_name,
            num(*x, 2),
            y_name,
            num(*y, 2)
        );
    }
    ui_w!(
        out,
        "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{} →</text>",
        num(PAD_L + size / 2.0, 1),
        size + PAD_B - 6.0,
        x_name
    );
    ui_w!(out, "<text class=\"tick\" x=\"4\" y=\"{}\">↑ {}</text>", PAD_T - 2.0, y_name);
    out.lit("</svg>");
    out
}

/// Two distributions over the same bins (reference and current), as
/// overlaid outlined bars. `bins` are (label, reference share, current share).
pub fn overlay(title: &str, bins: &[(String, f64, f64)]) -> Html {
    let labels: Vec<String> = bins.iter().map(|b| b.0.clone()).collect();
    let mut out = Html::new();
    open(&mut out, "bars overlay", title, W, H);
    let max = bins.iter().map(|b| b.1.max(b.2)).fold(0.0, f64::max);
    let y = Scale::new(0.0, max.max(1e-9), H - PAD_B, PAD_T);
    y_axis(&mut out, y, W);
    let slot = (W - PAD_L - PAD_R) / labels.len().max(1) as f64;
    let every = (labels.len() / 8).max(1);
    for (i, (label, r, c)) in bins.iter().enumerate() {
        let x = PAD_L + slot * i as f64;
        for (v, class, off) in [(*r, "ref", 0.1), (*c, "cur", 0.45)] {
            ui_w!(
                out,
                "<rect class=\"{}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{}: {}</title></rect>",
                class,
                num(x + slot * off, 1),
                num(y.at(v), 1),
                num(slot * 0.45, 1),
                num((y.at(0.0) - y.at(v)).max(0.0), 1),
                label,
                num(v, 4)
            );
        }
        if i % every == 0 {
            ui_w!(
                out,
                "<text class=\"tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                num(x + slot / 2.0, 1),
                H - PAD_B + 14.0,
                label
            );
        }
    }
    legend(&mut out, [("reference", "ref"), ("current", "cur")].into_iter());
    out.lit("</svg>");
    out
}

/// A small line without axes (a trend per row of a table).
pub fn sparkline(values: &[f64]) -> Html {
    let mut out = Html::new();
    let (w, h) = (90.0, 22.0);
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let xs = Scale::new(0.0, (values.len().max(2) - 1) as f64, 2.0, w - 2.0);
    let ys = Scale::new(lo, hi, h - 2.0, 2.0);
    let mut d = String::new();
    for (i, v) in values.iter().enumerate() {
        d.push_str(&format!("{}{} {} ", if i == 0 { "M" } else { "L" }, num(xs.at(i as f64), 1), num(ys.at(*v), 1)));
    }
    ui_w!(
        out,
        "<svg class=\"spark\" viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\"><path class=\"line\" d=\"{}\"/></svg>",
        w,
        h,
        w,
        h,
        d.trim_end()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_shapes_drawn() {
        let probe = "<script>alert(1)</script>".to_string();
        let c = intervals("trust", &[(probe.clone(), 0.5, 0.4, 0.6)], Some(0.5));
        assert!(!c.as_str().contains("<script>"));
        assert!(c.as_str().contains("&lt;script&gt;"));
        let b = stacked_bars("days", &["d1".into(), "d2".into()], &[("predictions", "p", vec![1.0, 3.0])]);
        assert_eq!(b.as_str().matches("<rect class=\"p\"").count(), 3, "two bars and the legend swatch");
        let s = scatter_identity("s", "predicted", "realised", &[(1.0, 2.0, probe)]);
        assert!(s.as_str().contains("identity") && !s.as_str().contains("<script>"));
    }

    #[test]
    fn scales_survive_degenerate_data() {
        let l = lines("empty", &[("mae".into(), "a", vec![(1.0, 0.0)])], &[]);
        assert!(!l.as_str().contains("NaN") && !l.as_str().contains("inf"));
        let sp = sparkline(&[1.0, 1.0, 1.0]);
        assert!(!sp.as_str().contains("NaN"));
    }
}
