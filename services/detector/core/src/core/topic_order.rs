//! The services read traffic, signatures and deploys from separate topics in no
//! guaranteed relative order: every order of those streams must give the same
//! regression at the same event time.

use super::*;
#[test]
fn detection_does_not_depend_on_which_topic_is_read_first() {
    let t0: i64 = 1_773_050_400_000; // 10:00
    let m = MINUTE_MS;
    let mk_tr = |rev: &str, t: i64| {
        AnyEvent::Traffic(Traffic {
            service: "c".into(),
            revision: rev.into(),
            window_start_ms: t,
            window_s: 60,
            requests: 1200,
            errors: None,
        })
    };
    let mut traffic = Vec::new();
    for i in 0..70 {
        traffic.push(mk_tr("a", t0 - 70 * m + i * m));
    }
    for i in 0..12 {
        traffic.push(mk_tr("b", t0 + i * m));
    }
    let sig = |rev: &str, s: &str, n: i64, f: i64, l: i64| {
        AnyEvent::SignatureCount(SignatureCount {
            service: "c".into(),
            revision: rev.into(),
            signature: s.into(),
            template: s.into(),
            exception_type: None,
            level: "error".into(),
            count: n,
            first_seen_ms: f,
            last_seen_ms: l,
            sample_message: String::new(),
            sample_stack: None,
            frames: vec![],
            trace_id: None,
        })
    };
    let sigs = vec![
        sig("a", "timeout", 7, t0 - 65 * m, t0 - 5 * m),
        sig("b", "keyerr", 6, t0 + m + 11_000, t0 + 6 * m + 11_000),
    ];
    let dep = vec![AnyEvent::Deploy(Deploy {
        service: "c".into(),
        diff: None,
        deployed_at_ms: t0,
        ..selfheal_schemas::testing::deploy()
    })];
    let groups = [traffic, sigs, dep];
    for perm in [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ] {
        let mut d = Detector::new(DetectorConfig::default());
        let mut out = Vec::new();
        for g in perm {
            for e in &groups[g] {
                out.extend(d.on_event(e));
            }
        }
        let got: Vec<i64> = out.iter().map(|r| (r.detected_at_ms - t0) / m).collect();
        assert_eq!(got, vec![2], "topic order {perm:?}");
    }
}
