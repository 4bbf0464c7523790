//! The report's plots, drawn by `plotters` into SVG strings: validation score per step (accepted
//! and rejected steps marked by reason) and bar charts (scores with intervals, tokens, calls).

use std::collections::BTreeMap;
use std::error::Error;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

type Drawn = Result<(), Box<dyn Error>>;

/// One point of the validation plot.
#[derive(Debug, Clone, PartialEq)]
pub struct StepPoint {
    pub step: u64,
    /// The current network's validation score before the step.
    pub before: f64,
    /// The candidate's validation score (absent when the gate stopped before validation).
    pub candidate: Option<f64>,
    /// `accepted`, or the rejection reason.
    pub outcome: String,
}

/// One bar: a label, its value, an optional darker part drawn inside it (e.g. the cache hits of
/// the calls) and an optional interval (drawn as an error bar).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub inner: Option<f64>,
    pub interval: Option<(f64, f64)>,
}

const WIDTH: u32 = 720;
const HEIGHT: u32 = 320;
const FONT: &str = "sans-serif";

/// Colours of the rejection reasons, in order of first appearance.
const REJECTED: [RGBColor; 5] = [
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(127, 127, 127),
];

fn svg(draw: impl FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> Drawn) -> String {
    let mut out = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(Into::into)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(Into::into))
    };
    match result {
        Ok(()) => out,
        Err(e) => {
            format!("<p class=\"error\">the plot could not be drawn: {}</p>", super::html::escape(&e.to_string()))
        }
    }
}

/// The validation score of the current network over the steps (a line from the starting score),
/// and each step's candidate as a marker: a green circle when accepted, a cross per rejection
/// reason (the legend names the reasons).
pub fn validation_plot(initial: f64, points: &[StepPoint]) -> String {
    svg(|root| {
        let last = points.iter().map(|p| p.step).max().unwrap_or(0) as f64;
        let mut chart = ChartBuilder::on(root)
            .caption("Validation score per step", (FONT, 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(-0.3f64..last + 0.7, 0f64..1.05)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("validation score")
            .x_labels((last as usize + 2).min(20))
            .x_label_formatter(&|x| if x.fract().abs() < 1e-9 { format!("{x:.0}") } else { String::new() })
            .draw()?;
        // A step function: the current score holds until an accepted step changes it.
        let mut line = vec![(0.0, initial)];
        let mut current = initial;
        for p in points {
            line.push((p.step as f64, current));
            if p.outcome == "accepted" {
                current = p.candidate.unwrap_or(current);
            }
            line.push((p.step as f64, current));
        }
        line.push((last + 0.7, current));
        chart
            .draw_series(LineSeries::new(line, BLUE.stroke_width(2)))?
            .label("current network")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE.stroke_width(2)));
        let mut by_outcome: Vec<(&str, Vec<(f64, f64)>)> = Vec::new();
        for p in points {
            let at = (p.step as f64, p.candidate.unwrap_or(p.before));
            match by_outcome.iter_mut().find(|(o, _)| *o == p.outcome) {
                Some((_, v)) => v.push(at),
                None => by_outcome.push((&p.outcome, vec![at])),
            }
        }
        let mut colour = REJECTED.iter().cycle();
        for (outcome, at) in by_outcome {
            if outcome == "accepted" {
                let green = RGBColor(44, 160, 44);
                chart
                    .draw_series(at.into_iter().map(|p| Circle::new(p, 6, green.filled())))?
                    .label("accepted")
                    .legend(move |(x, y)| Circle::new((x + 9, y), 5, green.filled()));
            } else {
                let c = *colour.next().expect("a cycle never ends");
                chart
                    .draw_series(at.into_iter().map(|p| Cross::new(p, 6, c.stroke_width(2))))?
                    .label(format!("rejected: {outcome}"))
                    .legend(move |(x, y)| Cross::new((x + 9, y), 5, c.stroke_width(2)));
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font((FONT, 13))
            .draw()?;
        Ok(())
    })
}

/// The bar of category `i` from 0 to `value`, drawn as a rectangle (in category order, so the SVG
/// is the same every time).
fn bar(i: usize, value: f64, colour: RGBColor) -> Rectangle<(SegmentValue<usize>, f64)> {
    let mut r = Rectangle::new([(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), value)], colour.filled());
    r.set_margin(0, 0, 24, 24);
    r
}

/// A bar chart of `bars` (values from 0; `max` fixes the top of the axis, else the tallest bar).
pub fn bar_chart(title: &str, y_desc: &str, bars: &[Bar], max: Option<f64>, inner_label: Option<&str>) -> String {
    svg(|root| {
        let n = bars.len().max(1);
        let top = max.unwrap_or_else(|| {
            bars.iter().map(|b| b.value.max(b.interval.map_or(0.0, |i| i.1))).fold(0.0, f64::max).max(1.0) * 1.15
        });
        let caption = match inner_label {
            Some(inner) => format!("{title} (dark: {inner})"),
            None => title.to_string(),
        };
        let mut chart = ChartBuilder::on(root)
            .caption(caption, (FONT, 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d((0..n - 1).into_segmented(), 0f64..top)?;
        let labels: BTreeMap<usize, &str> = bars.iter().enumerate().map(|(i, b)| (i, b.label.as_str())).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(y_desc)
            .y_label_formatter(&|y| if top > 10.0 { format!("{y:.0}") } else { format!("{y:.1}") })
            .x_labels(n)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(i).map(|s| s.to_string()).unwrap_or_default(),
                _ => String::new(),
            })
            .draw()?;
        let light = RGBColor(158, 188, 218);
        chart.draw_series(bars.iter().enumerate().map(|(i, b)| bar(i, b.value, light)))?;
        let dark = RGBColor(49, 130, 189);
        chart.draw_series(bars.iter().enumerate().filter_map(|(i, b)| b.inner.map(|v| bar(i, v, dark))))?;
        chart.draw_series(bars.iter().enumerate().filter_map(|(i, b)| {
            b.interval.map(|(low, high)| {
                ErrorBar::new_vertical(SegmentValue::CenterOf(i), low, b.value, high, BLACK.stroke_width(2), 12)
            })
        }))?;
        chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
            let y = b.interval.map_or(b.value, |i| i.1).min(top) + top * 0.02;
            let text = if b.value.fract() == 0.0 && b.value >= 1.0 {
                format!("{}", b.value)
            } else {
                format!("{:.3}", b.value)
            };
            let style = (FONT, 12).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Bottom));
            Text::new(text, (SegmentValue::CenterOf(i), y), style)
        }))?;
        Ok(())
    })
}
