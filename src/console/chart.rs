//! The service timeline as an SVG (pure, server-side): error rate per
//! revision per event-time minute (errors per request when traffic is known,
//! else errors per minute), with the deploys, detections, verdicts and
//! actions marked on it. No script, so it renders in any browser and in a
//! screenshot.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use selfheal_common::describe;

use super::html::esc;
use super::model::ServiceState;

const W: f64 = 960.0;
const H: f64 = 300.0;
const PAD_L: f64 = 60.0;
const PAD_R: f64 = 20.0;
const PAD_T: f64 = 30.0;
const PAD_B: f64 = 40.0;
/// Minutes without data after which a revision's line breaks.
const GAP_MS: i64 = 3 * 60_000;
/// Revision line colours, in order of first appearance.
const PALETTE: [&str; 6] = [
    "#4c78a8", "#f58518", "#54a24b", "#b279a2", "#9d755d", "#e45756",
];

/// A mark on the time axis.
struct Mark {
    at_ms: i64,
    colour: &'static str,
    label: String,
}

fn marks(s: &ServiceState) -> Vec<Mark> {
    let mut out = Vec::new();
    for d in &s.deploys {
        out.push(Mark {
            at_ms: d.deployed_at_ms,
            colour: "#1f4e9c",
            label: format!("deploy {}", short(&d.revision)),
        });
    }
    for (rev, i) in &s.incidents {
        if let Some(at) = i.detected_at_ms() {
            out.push(Mark {
                at_ms: at,
                colour: "#d62728",
                label: format!("detected {}", short(rev)),
            });
        }
        if let Some(v) = &i.verdict {
            out.push(Mark {
                at_ms: v.decided_at_ms,
                colour: "#ff7f0e",
                label: format!("verdict {}", describe::decision(v.decision)),
            });
        }
        for a in &i.actions {
            out.push(Mark {
                at_ms: a.decided_at_ms(),
                colour: "#2ca02c",
                label: describe::action_kind(a.latest.action).to_owned(),
            });
        }
    }
    out.retain(|m| m.at_ms > 0);
    out
}

fn short(rev: &str) -> &str {
    rev.get(..12).unwrap_or(rev)
}

/// Splits a revision's minutes where more than [`GAP_MS`] pass without data.
fn runs(points: &[(i64, f64)]) -> Vec<&[(i64, f64)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..points.len() {
        if points[i].0 - points[i - 1].0 > GAP_MS {
            out.push(&points[start..i]);
            start = i;
        }
    }
    if start < points.len() {
        out.push(&points[start..]);
    }
    out
}

/// The timeline SVG of one service, or a note when it has nothing to draw.
pub(crate) fn timeline(s: &ServiceState) -> String {
    let marks = marks(s);
    let mut series: BTreeMap<&str, Vec<(i64, f64)>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for ((minute, rev), rate) in &s.rates {
        if !order.contains(&rev.as_str()) {
            order.push(rev);
        }
        series.entry(rev).or_default().push((*minute, rate.value()));
    }
    let times = marks
        .iter()
        .map(|m| m.at_ms)
        .chain(s.rates.keys().map(|(m, _)| *m));
    let (Some(t0), Some(t1)) = (times.clone().min(), times.max()) else {
        return "<p class=\"note\">Nothing to draw yet.</p>".to_owned();
    };
    let (t0, t1) = (t0 - 60_000, t1.max(t0 + 60_000) + 60_000);
    let ymax = series
        .values()
        .flatten()
        .map(|(_, v)| *v)
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let x = |t: i64| PAD_L + (t - t0) as f64 / (t1 - t0) as f64 * (W - PAD_L - PAD_R);
    let y = |v: f64| H - PAD_B - v / ymax * (H - PAD_T - PAD_B);
    let mut svg = format!(
        "<svg class=\"timeline\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" \
         xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"timeline\">\
         <rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#fff\"/>"
    );
    let _ = write!(
        svg,
        "<line x1=\"{PAD_L}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#888\"/>\
         <line x1=\"{PAD_L}\" y1=\"{PAD_T}\" x2=\"{PAD_L}\" y2=\"{b}\" stroke=\"#888\"/>\
         <text x=\"4\" y=\"{PAD_T}\" font-size=\"11\">{ymax:.3}</text>\
         <text x=\"4\" y=\"{b}\" font-size=\"11\">0</text>\
         <text x=\"{PAD_L}\" y=\"{t}\" font-size=\"11\">{}</text>\
         <text x=\"{r}\" y=\"{t}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
        esc(&describe::event_time(t0)),
        esc(&describe::event_time(t1)),
        b = H - PAD_B,
        r = W - PAD_R,
        t = H - PAD_B + 16.0,
    );
    for (n, rev) in order.iter().enumerate() {
        let colour = PALETTE[n % PALETTE.len()];
        // A revision that did not serve for a while (replaced, then rolled
        // back to) gets a gap, not a line across the time it was away.
        for run in runs(&series[rev]) {
            let points: Vec<String> = run
                .iter()
                // A minute's rate is drawn at its middle.
                .map(|(t, v)| format!("{:.1},{:.1}", x(*t + 30_000), y(*v)))
                .collect();
            let _ = write!(
                svg,
                "<polyline class=\"rate\" data-revision=\"{r}\" fill=\"none\" stroke=\"{colour}\" \
                 stroke-width=\"2\" points=\"{}\"/>",
                points.join(" "),
                r = esc(short(rev)),
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{lx}\" y=\"{ly}\" font-size=\"12\" fill=\"{colour}\">{r}</text>",
            r = esc(short(rev)),
            lx = W - PAD_R - 120.0,
            ly = PAD_T + 14.0 * n as f64,
        );
    }
    for (n, m) in marks.iter().enumerate() {
        let mx = x(m.at_ms);
        let _ = write!(
            svg,
            "<line class=\"mark\" x1=\"{mx:.1}\" y1=\"{PAD_T}\" x2=\"{mx:.1}\" y2=\"{b}\" \
             stroke=\"{c}\" stroke-dasharray=\"4 3\"/>\
             <text x=\"{tx:.1}\" y=\"{ty:.1}\" font-size=\"11\" fill=\"{c}\">{l}</text>",
            b = H - PAD_B,
            c = m.colour,
            tx = mx + 3.0,
            ty = PAD_T + 12.0 + 12.0 * (n % 6) as f64,
            l = esc(&m.label),
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::model::Model;
    use crate::console::testing::{count, deploy, regression, traffic};
    use selfheal_schemas::AnyEvent;

    #[test]
    fn a_line_per_revision_and_a_mark_per_deploy_and_detection() {
        let mut m = Model::default();
        m.fold(&AnyEvent::Deploy(deploy("checkout", "a", 60_000)));
        m.fold(&AnyEvent::Deploy(deploy("checkout", "b", 600_000)));
        for (rev, t) in [
            ("a", 120_000),
            ("a", 180_000),
            ("b", 660_000),
            ("b", 720_000),
        ] {
            m.fold(&AnyEvent::SignatureCount(count("checkout", rev, t, 2)));
            m.fold(&AnyEvent::Traffic(traffic("checkout", rev, t, 100)));
        }
        m.fold(&AnyEvent::Regression(regression("checkout", "b", 720_000)));
        let svg = timeline(&m.services["checkout"]);
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        m.fold(&AnyEvent::SignatureCount(count(
            "checkout", "a", 1_200_000, 1,
        )));
        let svg = timeline(&m.services["checkout"]);
        assert_eq!(
            svg.matches("<polyline class=\"rate\" data-revision=\"a\"")
                .count(),
            2,
            "a broken where it did not serve: {svg}"
        );
        assert!(svg.contains("data-revision=\"b\""));
        assert_eq!(svg.matches("class=\"mark\"").count(), 3, "{svg}");
        assert!(svg.contains("deploy b") && svg.contains("detected b"));
    }

    #[test]
    fn nothing_to_draw_says_so() {
        assert!(timeline(&ServiceState::default()).contains("Nothing to draw"));
    }
}
