//! Records and their shipping. Services with a late shipper deliver their
//! records shuffled within a jitter and, now and then, a whole minute's batch
//! 5–20 minutes late; the history file is what a collector received, so it is
//! written in *arrival* order, not sorted by `ts`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::io::Write;

use super::rng::Rng;
use super::topology::Lateness;

/// Collects records and writes them in arrival order.
pub(super) struct Shipper {
    /// Records arriving on time, in generation order.
    now: String,
    /// Late records: (arrival ms, sequence, line).
    late: BinaryHeap<Reverse<(i64, u64, String)>>,
    seq: u64,
    /// Records written so far.
    pub(super) records: usize,
}

impl Shipper {
    pub(super) fn new() -> Self {
        Shipper {
            now: String::new(),
            late: BinaryHeap::new(),
            seq: 0,
            records: 0,
        }
    }

    /// Ships `line` (one JSON object) with event time `ts`; `late`: the
    /// service's shipper, `batch_delay_ms`: this minute's batch delay.
    pub(super) fn ship(
        &mut self,
        line: String,
        ts: i64,
        late: Option<Lateness>,
        batch_delay_ms: i64,
        rng: &mut Rng,
    ) {
        self.records += 1;
        match late {
            None => {
                self.now.push_str(&line);
                self.now.push('\n');
            }
            Some(l) => {
                let arrival = ts + rng.int(0, l.jitter_ms) + batch_delay_ms;
                self.seq += 1;
                self.late.push(Reverse((arrival, self.seq, line)));
            }
        }
    }

    /// Writes what has arrived by `until` (on-time records first: they were
    /// generated for the minute that ends at `until`).
    pub(super) fn flush(&mut self, until: i64, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(self.now.as_bytes())?;
        self.now.clear();
        while let Some(Reverse((a, _, _))) = self.late.peek() {
            if *a > until {
                break;
            }
            let Some(Reverse((_, _, line))) = self.late.pop() else {
                break;
            };
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Writes everything still in flight.
    pub(super) fn finish(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        self.flush(i64::MAX, out)
    }
}

/// A log record.
pub(super) fn log(
    ts: i64,
    service: &str,
    revision: &str,
    msg: &str,
    stack: Option<&str>,
) -> String {
    serde_json::json!({"ts": ts, "service": service, "revision": revision,
        "level": "error", "message": msg, "stack": stack})
    .to_string()
}

/// A traffic record.
pub(super) fn traffic(ts: i64, service: &str, revision: &str, requests: u64) -> String {
    let mut s = String::with_capacity(96);
    write!(
        s,
        r#"{{"type":"traffic","ts":{ts},"service":"{service}","revision":"{revision}","requests":{requests},"window_s":60}}"#
    )
    .expect("write to string");
    s
}

/// A deploy record.
pub(super) fn deploy(
    ts: i64,
    service: &str,
    revision: &str,
    previous: &str,
    repo: &str,
    diff: &str,
) -> String {
    serde_json::json!({"type":"deploy","ts":ts,"service":service,"revision":revision,
        "previous_revision":previous,"repo":repo,"diff":diff})
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_records_come_out_in_arrival_order_after_on_time_ones() {
        let mut s = Shipper::new();
        let mut rng = Rng(1);
        let late = Some(Lateness {
            jitter_ms: 1,
            batch_delay_p: 0.0,
        });
        s.ship("a".into(), 1_000, late, 600_000, &mut rng);
        s.ship("b".into(), 2_000, None, 0, &mut rng);
        s.ship("c".into(), 3_000, late, 0, &mut rng);
        let mut out = Vec::new();
        s.flush(60_000, &mut out).unwrap();
        assert_eq!(out, b"b\nc\n");
        s.finish(&mut out).unwrap();
        assert_eq!(out, b"b\nc\na\n");
        assert_eq!(s.records, 3);
    }
}
