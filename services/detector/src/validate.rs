//! The detector's own defence at its input (pure): an event whose values no
//! real system produces, or of a type its topic does not carry, is rejected
//! with a reason (the adapters dead-letter it) and never reaches the state.
//!
//! Ingest already range-checks what it writes; these checks hold for any
//! producer of the input topics (another tool, a bug, a replayed old topic).
//! An `i64::MAX` count or an `i64::MIN` time would otherwise poison
//! baselines, overflow time arithmetic or pin the watermark in year 292 million.

use selfheal_common::config::TopicsConfig;
use selfheal_schemas::AnyEvent;

/// Largest count or request total one event may carry (10¹²).
pub const MAX_COUNT: i64 = 1_000_000_000_000;
/// Latest plausible event time: 9999-12-31T23:59:59.999Z, epoch ms.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;
/// Longest traffic window, in seconds (one day).
pub const MAX_WINDOW_S: i32 = 86_400;
/// Widest span between a count's first and last event (31 days: ingest
/// accepts records up to `ingest.max_age_s`, 30 days by default, late).
pub const MAX_SPAN_MS: i64 = 31 * 86_400_000;

/// Why an input event is rejected.
pub type Rejection = String;

/// Checks an event read from `topic` (one of the detector's inputs).
pub fn check(topics: &TopicsConfig, topic: &str, event: &AnyEvent) -> Result<(), Rejection> {
    let expected = if topic == topics.signatures {
        Some("SignatureCount")
    } else if topic == topics.traffic {
        Some("Traffic")
    } else if topic == topics.deploys {
        Some("Deploy")
    } else if topic == topics.builds {
        Some("Build")
    } else if topic == topics.latency {
        Some("LatencyHistogram")
    } else if topic == topics.gauges {
        Some("InstanceGauge")
    } else {
        None
    };
    if let Some(name) = expected {
        if event.name() != name {
            return Err(format!(
                "a {} event on {topic}, which carries {name} events only",
                event.name()
            ));
        }
    }
    check_values(event)
}

/// Range checks of an event's numbers and keys, whatever its topic.
pub fn check_values(event: &AnyEvent) -> Result<(), Rejection> {
    match event {
        AnyEvent::SignatureCount(s) => {
            service(&s.service)?;
            count("count", s.count)?;
            time("first_seen_ms", s.first_seen_ms)?;
            time("last_seen_ms", s.last_seen_ms)?;
            if s.last_seen_ms < s.first_seen_ms {
                return Err(format!(
                    "last_seen_ms ({}) is before first_seen_ms ({})",
                    s.last_seen_ms, s.first_seen_ms
                ));
            }
            if s.last_seen_ms - s.first_seen_ms > MAX_SPAN_MS {
                return Err(format!(
                    "first_seen_ms and last_seen_ms are {} days apart (at most {})",
                    (s.last_seen_ms - s.first_seen_ms) / 86_400_000,
                    MAX_SPAN_MS / 86_400_000
                ));
            }
            if s.signature.is_empty() || s.signature.contains('\u{0}') {
                return Err("signature is empty or contains NUL".to_owned());
            }
            Ok(())
        }
        AnyEvent::Traffic(t) => {
            service(&t.service)?;
            count("requests", t.requests)?;
            if let Some(e) = t.errors {
                if !(0..=t.requests).contains(&e) {
                    return Err(format!(
                        "errors is {e}, not within 0..=requests ({})",
                        t.requests
                    ));
                }
            }
            time("window_start_ms", t.window_start_ms)?;
            if !(1..=MAX_WINDOW_S).contains(&t.window_s) {
                return Err(format!(
                    "window_s is {}, not within 1..={MAX_WINDOW_S}",
                    t.window_s
                ));
            }
            Ok(())
        }
        AnyEvent::Deploy(d) => {
            service(&d.service)?;
            time("deployed_at_ms", d.deployed_at_ms)
        }
        AnyEvent::Build(b) => {
            service(&b.service)?;
            time("finished_at_ms", b.finished_at_ms)
        }
        AnyEvent::LatencyHistogram(h) => {
            service(&h.service)?;
            time("window_start_ms", h.window_start_ms)?;
            histogram(&h.bounds, &h.counts)?;
            if !(1..=MAX_WINDOW_S).contains(&h.window_s) {
                return Err(format!(
                    "window_s is {}, not within 1..={MAX_WINDOW_S}",
                    h.window_s
                ));
            }
            Ok(())
        }
        AnyEvent::InstanceGauge(g) => {
            service(&g.service)?;
            time("ts_ms", g.ts_ms)?;
            if !g.value.is_finite() || g.value < 0.0 {
                return Err(format!("value is {}, not a finite number ≥ 0", g.value));
            }
            Ok(())
        }
        // Not an input: the topic check above names it; elsewhere ignored.
        _ => Ok(()),
    }
}

fn service(s: &str) -> Result<(), Rejection> {
    // NUL separates the parts of the changelog's keys.
    if s.trim().is_empty() || s.contains('\u{0}') {
        return Err(format!(
            "service is empty or contains NUL ({} bytes)",
            s.len()
        ));
    }
    Ok(())
}

/// Bounds finite and strictly increasing; one more count than bounds, each
/// a count, their total too.
fn histogram(bounds: &[f64], counts: &[i64]) -> Result<(), Rejection> {
    if bounds.is_empty() || bounds.iter().any(|b| !b.is_finite()) {
        return Err("bounds are empty or not finite".to_owned());
    }
    if bounds.windows(2).any(|w| w[0] >= w[1]) {
        return Err("bounds are not strictly increasing".to_owned());
    }
    if counts.len() != bounds.len() + 1 {
        return Err(format!(
            "{} counts for {} bounds (expected {})",
            counts.len(),
            bounds.len(),
            bounds.len() + 1
        ));
    }
    for c in counts {
        count("counts[i]", *c)?;
    }
    count(
        "sum of counts",
        counts.iter().fold(0i64, |a, c| a.saturating_add(*c)),
    )
}

fn count(field: &str, v: i64) -> Result<(), Rejection> {
    if !(0..=MAX_COUNT).contains(&v) {
        return Err(format!("{field} is {v}, not within 0..={MAX_COUNT}"));
    }
    Ok(())
}

fn time(field: &str, v: i64) -> Result<(), Rejection> {
    if !(0..=MAX_TIME_MS).contains(&v) {
        return Err(format!(
            "{field} is {v}, outside years 1970..=9999 (0..={MAX_TIME_MS} epoch ms)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use selfheal_schemas::{SignatureCount, Traffic};

    use super::*;

    fn count_event() -> SignatureCount {
        SignatureCount {
            service: "checkout".into(),
            revision: "a".into(),
            signature: "00000000000000aa".into(),
            template: "boom".into(),
            exception_type: None,
            level: "error".into(),
            count: 3,
            first_seen_ms: 1_800_000_000_000,
            last_seen_ms: 1_800_000_001_000,
            sample_message: "boom".into(),
            sample_stack: None,
            frames: vec![],
            trace_id: None,
        }
    }

    fn traffic() -> Traffic {
        Traffic {
            service: "checkout".into(),
            revision: "a".into(),
            window_start_ms: 1_800_000_000_000,
            window_s: 60,
            requests: 100,
            errors: None,
        }
    }

    fn rejects(e: AnyEvent, needle: &str) {
        let t = TopicsConfig::default();
        let topic = match &e {
            AnyEvent::Traffic(_) => t.traffic.clone(),
            _ => t.signatures.clone(),
        };
        let err = check(&t, &topic, &e).unwrap_err();
        assert!(err.contains(needle), "{err}");
    }

    #[test]
    fn plausible_events_pass() {
        let t = TopicsConfig::default();
        check(&t, &t.signatures, &AnyEvent::SignatureCount(count_event())).unwrap();
        check(&t, &t.traffic, &AnyEvent::Traffic(traffic())).unwrap();
    }

    #[test]
    fn absurd_counts_and_times_are_rejected() {
        let with = |f: fn(&mut SignatureCount)| {
            let mut s = count_event();
            f(&mut s);
            AnyEvent::SignatureCount(s)
        };
        rejects(with(|s| s.count = i64::MAX), "count is 9223372036854775807");
        rejects(with(|s| s.count = -1), "count is -1");
        rejects(with(|s| s.first_seen_ms = i64::MIN), "first_seen_ms");
        rejects(with(|s| s.last_seen_ms = i64::MAX), "last_seen_ms");
        rejects(with(|s| s.first_seen_ms = 0), "days apart");
        rejects(with(|s| s.last_seen_ms = s.first_seen_ms - 1), "before");
        rejects(with(|s| s.service = "a\u{0}b".into()), "NUL");
        let mut t = traffic();
        t.requests = i64::MAX;
        rejects(AnyEvent::Traffic(t), "requests");
        let mut t = traffic();
        t.window_s = 0;
        rejects(AnyEvent::Traffic(t), "window_s");
        let mut t = traffic();
        t.window_start_ms = -5;
        rejects(AnyEvent::Traffic(t), "window_start_ms");
    }

    #[test]
    fn an_event_of_another_type_on_an_input_topic_is_rejected() {
        let t = TopicsConfig::default();
        let err = check(&t, &t.signatures, &AnyEvent::Traffic(traffic())).unwrap_err();
        assert!(
            err.contains("a Traffic event on selfheal.signatures"),
            "{err}"
        );
    }
}
