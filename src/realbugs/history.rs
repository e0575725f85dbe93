//! One Defects4J case as an NDJSON history (the interchange format).
//!
//! Slot `k` starts at 2026-01-01T00:00Z + 4 h × k: 120 minutes at the fixed
//! revision, the deploy of the buggy one with the case's patch as its diff,
//! then 60 minutes at the buggy revision. 200 requests a minute throughout;
//! an unrelated, stackless upstream timeout on ~0.2% of requests on both
//! revisions (an error that exists before and after the deploy); and from the
//! deploy on, the bug's traces (in turn) on ~2% of requests (Poisson counts
//! from a seed per slot, timestamps spread over each minute).

use std::fmt::Write as _;

use serde_json::json;

use super::cases::Case;

/// Event time of slot 0.
const START_MS: i64 = 1_767_225_600_000;
/// Length of one case's slot.
const SLOT_MS: i64 = 4 * 3_600_000;
/// Minutes before the deploy.
const BEFORE_MIN: i64 = 120;
/// Minutes after it.
const AFTER_MIN: i64 = 60;
/// Requests a minute.
const REQUESTS: i64 = 200;
/// The bug's errors per request.
const BUG_RATE: f64 = 0.02;
/// The background timeout's errors per request.
const BACKGROUND_RATE: f64 = 0.002;

/// Appends the case's records to `out`.
pub(crate) fn write_case(out: &mut String, case: &Case, slot: usize) {
    let service = case.service();
    let t0 = START_MS + SLOT_MS * slot as i64;
    let deploy_ms = t0 + BEFORE_MIN * 60_000;
    let mut rng = Rng(0x5e1f_4ea1 ^ (slot as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut trace_turn = 0usize;
    for minute in 0..BEFORE_MIN + AFTER_MIN {
        let at = t0 + minute * 60_000;
        let after = at >= deploy_ms;
        let revision = if after {
            &case.buggy_revision
        } else {
            &case.fixed_revision
        };
        if minute == BEFORE_MIN {
            line(
                out,
                json!({"type": "deploy", "ts": deploy_ms, "service": service,
                       "revision": case.buggy_revision, "previous_revision": case.fixed_revision,
                       "repo": format!("defects4j/{}", case.project), "diff": case.deployed_patch}),
            );
        }
        line(
            out,
            json!({"type": "traffic", "ts": at, "service": service, "revision": revision,
                   "requests": REQUESTS, "window_s": 60}),
        );
        for _ in 0..rng.poisson(REQUESTS as f64 * BACKGROUND_RATE) {
            let ts = at + (rng.next() % 60_000) as i64;
            line(
                out,
                json!({"type": "log", "ts": ts, "service": service, "revision": revision,
                       "level": "error",
                       "message": format!("Timeout after {}ms calling pricing-db", 3000 + rng.next() % 50)}),
            );
        }
        if !after {
            continue;
        }
        for _ in 0..rng.poisson(REQUESTS as f64 * BUG_RATE) {
            let trace = &case.traces[trace_turn % case.traces.len()];
            trace_turn += 1;
            let message = trace.lines().next().unwrap_or_default();
            let ts = at + (rng.next() % 60_000) as i64;
            line(
                out,
                json!({"type": "log", "ts": ts, "service": service, "revision": revision,
                       "level": "error", "message": message, "stack": trace}),
            );
        }
    }
}

fn line(out: &mut String, v: serde_json::Value) {
    let _ = writeln!(out, "{v}");
}

/// splitmix64, with a Poisson draw by inversion (small means only).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn poisson(&mut self, mean: f64) -> u64 {
        let limit = (-mean).exp();
        let mut k = 0;
        let mut p = self.uniform();
        while p > limit && k < 1000 {
            k += 1;
            p *= self.uniform();
        }
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_is_a_deploy_between_two_traffic_periods() {
        let case = Case {
            project: "Lang".into(),
            bug: 1,
            fixed_revision: "f".into(),
            buggy_revision: "b".into(),
            deployed_patch: "--- a/x\n+++ b/x\n".into(),
            patch_of: None,
            traces: vec!["java.lang.X: m\n\tat a.B.c(B.java:3)\n".into()],
        };
        let mut out = String::new();
        write_case(&mut out, &case, 2);
        let rows: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(rows.iter().filter(|r| r["type"] == "deploy").count(), 1);
        assert_eq!(
            rows.iter().filter(|r| r["type"] == "traffic").count(),
            (BEFORE_MIN + AFTER_MIN) as usize
        );
        let bug = rows.iter().filter(|r| r["stack"].is_string()).count();
        assert!(
            (150..=330).contains(&bug),
            "{bug} bug lines (2% of 60 × 200)"
        );
        assert!(rows
            .iter()
            .filter(|r| r["stack"].is_string())
            .all(|r| r["revision"] == "b"));
    }
}
