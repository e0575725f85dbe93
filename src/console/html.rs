//! The console's pages as HTML (pure, server-side rendered): fleet, service
//! and incident. Every piece of event text (error messages, diffs, reasons)
//! is untrusted and escaped. The one script is the live-update hook: it
//! reloads the page when the server announces a change.

use std::fmt::Write as _;

use selfheal_common::describe;
use selfheal_schemas::{Regression, Verdict};

use super::chart;
use super::diff::hunks_of;
use super::model::{Incident, Model, ServiceState};

/// Escapes text for HTML element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment (service names and revisions in links).
pub(crate) fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222}\
header{background:#1f2d3d;color:#fff;padding:10px 20px}header a{color:#fff;text-decoration:none;font-weight:600}\
main{padding:10px 20px}table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f4f6f8}.open{color:#b00;font-weight:600}.ok{color:#2a7}.note{color:#666}\
pre.diff{background:#f8f8f8;border:1px solid #ddd;padding:6px;overflow:auto}\
pre.diff span{display:block}.add{background:#e6ffed}.del{background:#ffeef0}\
.cited{background:#fff3b0;outline:2px solid #e0a800;font-weight:600}\
.verdict{font-size:16px}.caused{color:#b00}.not_caused{color:#2a7}.inconclusive{color:#a60}code{background:#f4f4f4;padding:0 3px}";

const LIVE: &str = "<script>if(window.EventSource){var s=new EventSource('/events');\
var v=null;s.onmessage=function(e){if(v!==null&&e.data!==v){location.reload()}v=e.data}}</script>";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{t} · selfheal</title><style>{STYLE}</style></head><body>\
         <header><a href=\"/\">selfheal</a> · {t}</header><main>{body}</main>{LIVE}</body></html>",
        t = esc(title)
    )
}

fn incident_link(service: &str, revision: &str, text: &str) -> String {
    format!(
        "<a href=\"/incident/{}/{}\">{}</a>",
        seg(service),
        seg(revision),
        esc(text)
    )
}

/// The fleet page: services, current revision, open incidents, last deploys.
pub(crate) fn fleet(m: &Model) -> String {
    let mut b = String::from("<h1>Fleet</h1>");
    let open = m.open_incidents();
    let _ = write!(b, "<h2>Open incidents ({})</h2>", open.len());
    if open.is_empty() {
        b.push_str("<p class=\"ok\">None.</p>");
    } else {
        b.push_str("<table id=\"open\"><tr><th>service</th><th>revision</th><th>detected (event time)</th><th>first error</th><th>verdict</th></tr>");
        for (s, r, i) in &open {
            let first = i
                .regressions
                .first()
                .map(describe::error_text)
                .unwrap_or_default();
            let _ = write!(
                b,
                "<tr><td><a href=\"/service/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                seg(s),
                esc(s),
                incident_link(s, r, r),
                esc(&i.detected_at_ms().map(describe::event_time).unwrap_or_default()),
                esc(&first),
                esc(i.verdict.as_ref().map(|v| describe::decision(v.decision)).unwrap_or("awaiting"))
            );
        }
        b.push_str("</table>");
    }
    b.push_str("<h2>Services</h2><table id=\"services\"><tr><th>service</th><th>current revision</th><th>open incidents</th><th>last deploys (outcome)</th></tr>");
    for (name, s) in &m.services {
        let open = s.incidents.values().filter(|i| i.is_open()).count();
        let last: Vec<String> = s
            .deploys
            .iter()
            .rev()
            .take(3)
            .map(|d| {
                format!(
                    "{} {}: {}",
                    incident_link(name, &d.revision, &d.revision),
                    esc(&describe::event_time(d.deployed_at_ms)),
                    esc(&s.outcome(&d.revision))
                )
            })
            .collect();
        let _ = write!(
            b,
            "<tr><td><a href=\"/service/{}\">{}</a></td><td><code>{}</code></td><td class=\"{}\">{open}</td><td>{}</td></tr>",
            seg(name),
            esc(name),
            esc(s.current_revision().unwrap_or("-")),
            if open > 0 { "open" } else { "ok" },
            if last.is_empty() { "-".to_owned() } else { last.join("<br>") }
        );
    }
    b.push_str("</table>");
    page("fleet", &b)
}

/// The service page: the timeline chart and the deploys with their outcome.
pub(crate) fn service(name: &str, s: &ServiceState) -> String {
    let mut b = format!(
        "<h1>{}</h1><p>Current revision <code>{}</code>. Error rate per revision \
         (errors per request where traffic is known, else errors per minute) in event time, \
         with deploys, detections, verdicts and actions marked.</p>",
        esc(name),
        esc(s.current_revision().unwrap_or("-"))
    );
    b.push_str(&chart::timeline(s));
    b.push_str("<h2>Deploys</h2><table id=\"deploys\"><tr><th>deployed (event time)</th><th>revision</th><th>previous</th><th>outcome</th></tr>");
    let mut revisions: Vec<&str> = s.deploys.iter().map(|d| d.revision.as_str()).collect();
    for r in s.incidents.keys() {
        if !revisions.contains(&r.as_str()) {
            revisions.push(r);
        }
    }
    for rev in revisions.iter().rev() {
        let d = s.deploy(rev);
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&d
                .map(|d| describe::event_time(d.deployed_at_ms))
                .unwrap_or_else(|| "not seen".into())),
            incident_link(name, rev, rev),
            esc(d
                .and_then(|d| d.previous_revision.as_deref())
                .unwrap_or("-")),
            esc(&s.outcome(rev))
        );
    }
    b.push_str("</table>");
    page(name, &b)
}

fn regressions_table(b: &mut String, regressions: &[Regression]) {
    b.push_str("<h2>Regressions</h2><table id=\"regressions\"><tr><th>kind</th><th>error (scrubbed)</th><th>observed vs expected</th><th>statistics</th><th>detected (event time)</th></tr>");
    for r in regressions {
        let _ =
            write!(
            b,
            "<tr><td>{}</td><td><code>{}</code><br><span class=\"note\">signature {}</span></td>\
             <td>{} vs {:.2}</td><td>rate ×{:.1}, p = {:.2e}{}{}</td><td>{}</td></tr>",
            esc(&format!("{:?}", r.kind).to_lowercase()),
            esc(&describe::error_text(r)),
            esc(&r.signature),
            r.observed,
            r.expected,
            r.rate_ratio,
            r.p_value,
            r.q_value.map(|q| format!(", q = {q:.2e}")).unwrap_or_default(),
            if r.externally_correlated { ", externally correlated" } else { "" },
            esc(&describe::detection(r))
        );
    }
    b.push_str("</table>");
}

fn verdict_section(b: &mut String, v: &Verdict, diff: Option<&str>) {
    let d = describe::decision(v.decision);
    let _ = write!(
        b,
        "<h2>Verdict</h2><p class=\"verdict\" id=\"verdict\"><span class=\"{d}\">{d}</span> \
         (confidence {:.2}, localization {}{}): {}</p><p>{}</p>",
        v.confidence,
        esc(v.localization.unwrap_or_default().as_str()),
        if v.adjudicator.is_empty() {
            String::new()
        } else {
            format!(", by {}", esc(&v.adjudicator))
        },
        esc(&describe::citation(v)
            .map(|c| format!("cites {c}"))
            .unwrap_or_else(|| "no line cited".into())),
        esc(&v.reasoning)
    );
    if !v.evidence.is_empty() {
        b.push_str(
            "<table id=\"evidence\"><tr><th>file:line</th><th>frame</th><th>strength</th></tr>",
        );
        for e in &v.evidence {
            let _ = write!(
                b,
                "<tr><td><code>{}{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(&e.file),
                e.line.map(|l| format!(":{l}")).unwrap_or_default(),
                esc(e.frame.as_deref().unwrap_or("-")),
                esc(&e.strength)
            );
        }
        b.push_str("</table>");
    }
    let Some(cited) = v.evidence.first() else {
        return;
    };
    let Some(diff) = diff else {
        b.push_str("<p class=\"note\">The deploy's diff is not known here.</p>");
        return;
    };
    for h in hunks_of(diff, &cited.file) {
        let _ = write!(b, "<pre class=\"diff\"><span>{}</span>", esc(&h.header));
        for l in &h.lines {
            let is_cited =
                l.new_line.is_some() && l.new_line.map(i64::from) == cited.line.map(i64::from);
            let class = match (is_cited, l.sign) {
                (true, _) => "cited",
                (false, '+') => "add",
                (false, '-') => "del",
                _ => "ctx",
            };
            let _ = write!(
                b,
                "<span class=\"{class}\">{:>5} {}{}</span>",
                l.new_line.map(|n| n.to_string()).unwrap_or_default(),
                l.sign,
                esc(&l.text)
            );
        }
        b.push_str("</pre>");
    }
}

fn actions_section(b: &mut String, i: &Incident) {
    b.push_str("<h2>Actions</h2>");
    if i.actions.is_empty() {
        b.push_str("<p class=\"note\">None yet.</p>");
        return;
    }
    b.push_str("<table id=\"actions\"><tr><th>action</th><th>rule</th><th>target</th><th>status history</th><th>recovery check</th><th>fix PR</th></tr>");
    for a in &i.actions {
        let l = &a.latest;
        let steps: Vec<String> = a
            .steps
            .iter()
            .map(|s| {
                format!(
                    "<b>{}</b> {}",
                    describe::action_status(s.status),
                    esc(&s.reason)
                )
            })
            .collect();
        let recovery = match l.recovery_verified {
            Some(true) => "recovered".to_owned(),
            Some(false) => "not recovered".to_owned(),
            None => "-".to_owned(),
        };
        let pr = l
            .pr_url
            .as_deref()
            .map(|u| format!("<a href=\"{}\">{}</a>", esc(u), esc(u)))
            .unwrap_or_else(|| "-".into());
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{recovery}</td><td>{pr}</td></tr>",
            describe::action_kind(l.action),
            esc(&l.rule),
            esc(l.target_revision.as_deref().unwrap_or("-")),
            steps.join("<br>")
        );
    }
    b.push_str("</table>");
}

/// The incident page: regressions, verdict with the cited hunk, actions.
pub(crate) fn incident(service: &str, revision: &str, s: &ServiceState, i: &Incident) -> String {
    let d = s.deploy(revision);
    let mut b = format!(
        "<h1>Incident: <a href=\"/service/{}\">{}</a> <code>{}</code></h1><p>{} · {}</p>",
        seg(service),
        esc(service),
        esc(revision),
        esc(&d
            .map(|d| format!(
                "deployed {} over {}",
                describe::event_time(d.deployed_at_ms),
                d.previous_revision.as_deref().unwrap_or("?")
            ))
            .unwrap_or_else(|| "deploy not seen".into())),
        if i.is_open() {
            "<span class=\"open\">open</span>"
        } else {
            "<span class=\"ok\">closed</span>"
        }
    );
    regressions_table(&mut b, &i.regressions);
    match &i.verdict {
        Some(v) => verdict_section(&mut b, v, d.and_then(|d| d.diff.as_deref())),
        None => b.push_str("<h2>Verdict</h2><p class=\"note\">Awaiting triage.</p>"),
    }
    actions_section(&mut b, i);
    page(&format!("{service} {revision}"), &b)
}

/// A page for what is not there.
pub(crate) fn not_found(what: &str) -> String {
    page("not found", &format!("<p>No {} known.</p>", esc(what)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::testing::{action, deploy, regression, verdict};
    use selfheal_schemas::{ActionKind, ActionStatus, AnyEvent, Decision};

    fn model() -> Model {
        let mut m = Model::default();
        m.fold(&AnyEvent::Deploy(deploy("checkout", "b", 600_000)));
        m.fold(&AnyEvent::Regression(regression("checkout", "b", 720_000)));
        m.fold(&AnyEvent::Verdict(verdict(
            "checkout",
            "b",
            Decision::Caused,
        )));
        m.fold(&AnyEvent::Action(action(
            "checkout",
            "b",
            ActionKind::Rollback,
            ActionStatus::DryRun,
        )));
        m
    }

    #[test]
    fn the_incident_page_marks_the_cited_line_and_escapes_event_text() {
        let m = model();
        let s = &m.services["checkout"];
        let html = incident("checkout", "b", s, &s.incidents["b"]);
        assert!(html.contains("cites src/shop/pricing.py:22"), "{html}");
        let cited = html.split("class=\"cited\">").nth(1).unwrap();
        assert!(cited.starts_with("   22 +"), "{cited}");
        assert!(cited.contains("&quot;usd&quot;"), "{cited}");
        assert!(!html.contains("<script>alert"), "event text is escaped");
        assert!(html.contains("&lt;script&gt;alert(1)"));
        assert!(html.contains("<span class=\"caused\">caused</span>"));
        assert!(
            html.contains("<td>rollback</td><td>caused_rollback</td><td><code>a</code>"),
            "{html}"
        );
        assert!(html.contains("6 vs 0.04"));
    }

    #[test]
    fn the_fleet_page_lists_the_open_incident_and_links_it() {
        let html = fleet(&model());
        assert!(html.contains("Open incidents (1)"), "{html}");
        assert!(html.contains("href=\"/incident/checkout/b\""));
        assert!(html.contains("rollback dry_run"), "{html}");
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
        assert_eq!(esc("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
    }
}
