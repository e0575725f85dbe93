//! The golden-signal records, in the issue's contract (`ts` in epoch ms, as
//! the other profiles write it).

use std::fmt::Write as _;

use super::latency::BOUNDS;

/// A traffic record with its 5xx count.
pub(super) fn traffic(
    ts: i64,
    service: &str,
    revision: &str,
    requests: u64,
    errors: u64,
) -> String {
    format!(
        r#"{{"type":"traffic","ts":{ts},"service":"{service}","revision":"{revision}","requests":{requests},"errors":{errors},"window_s":60}}"#
    )
}

/// A delta explicit-bucket histogram of `http.server.request.duration`.
pub(super) fn histogram(
    ts: i64,
    service: &str,
    revision: &str,
    route: &str,
    counts: &[u64],
    sum: f64,
) -> String {
    let mut s = String::with_capacity(320);
    let _ = write!(
        s,
        r#"{{"type":"histogram","ts":{ts},"service":"{service}","revision":"{revision}","metric":"http.server.request.duration","unit":"s","window_s":60,"bounds":["#
    );
    for (i, b) in BOUNDS.iter().enumerate() {
        let _ = write!(s, "{}{b}", if i == 0 { "" } else { "," });
    }
    s.push_str(r#"],"counts":["#);
    for (i, c) in counts.iter().enumerate() {
        let _ = write!(s, "{}{c}", if i == 0 { "" } else { "," });
    }
    let _ = write!(
        s,
        r#"],"sum":{sum:.4},"attributes":{{"http.route":"{route}"}}}}"#
    );
    s
}

/// A per-instance gauge.
pub(super) fn gauge(
    ts: i64,
    service: &str,
    revision: &str,
    instance: &str,
    metric: &str,
    unit: &str,
    value: &str,
) -> String {
    format!(
        r#"{{"type":"gauge","ts":{ts},"service":"{service}","revision":"{revision}","instance":"{instance}","metric":"{metric}","unit":"{unit}","value":{value}}}"#
    )
}
