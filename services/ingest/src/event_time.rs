//! Event-time hygiene at intake (pure: the wall clock is an argument).
//!
//! Time is event time everywhere downstream: one record stamped in the year
//! 2099 would move the detector's watermark eighty years ahead and close
//! every open window at once. So the live inputs (HTTP intake, OTLP, the raw
//! topic) reject a record whose `ts` is more than `ingest.max_future_skew_s`
//! ahead of the intake's clock, or older than `ingest.max_age_s` (0: no
//! limit). `selfheal backtest` replays history and parses the same records
//! without this check: it is applied by the intake adapters only, after
//! parsing. The static checks (years 1970..=9999, counts, windows) are the
//! parser's own and hold for every input.

use selfheal_common::config::IngestConfig;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::record::{LineError, Parsed, Record};

/// The bounds of a live record's event time relative to the intake's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTimeLimits {
    max_future_skew_ms: i64,
    /// `None`: no lower bound.
    max_age_ms: Option<i64>,
}

impl EventTimeLimits {
    /// The limits `ingest.max_future_skew_s` and `ingest.max_age_s` set.
    pub fn from_config(c: &IngestConfig) -> Self {
        let ms = |s: u64| i64::try_from(s.saturating_mul(1_000)).unwrap_or(i64::MAX);
        Self {
            max_future_skew_ms: ms(c.max_future_skew_s),
            max_age_ms: (c.max_age_s > 0).then(|| ms(c.max_age_s)),
        }
    }

    /// Whether a record stamped `ts_ms` may enter at wall-clock `now_ms`;
    /// the reason when not.
    pub fn check(&self, ts_ms: i64, now_ms: i64) -> Result<(), String> {
        let ahead = ts_ms.saturating_sub(now_ms);
        if ahead > self.max_future_skew_ms {
            return Err(format!(
                "{} is {} s ahead of the intake's clock (at most ingest.max_future_skew_s = {} s)",
                rfc3339(ts_ms),
                ahead / 1_000,
                self.max_future_skew_ms / 1_000
            ));
        }
        if let Some(max_age) = self.max_age_ms {
            let age = now_ms.saturating_sub(ts_ms);
            if age > max_age {
                return Err(format!(
                    "{} is {} days old (at most ingest.max_age_s = {} s)",
                    rfc3339(ts_ms),
                    age / 86_400_000,
                    max_age / 1_000
                ));
            }
        }
        Ok(())
    }

    /// Moves the records of `parsed` outside the limits to its rejected
    /// lines (field `field`), keeping both in line order.
    pub fn apply(&self, parsed: &mut Parsed, now_ms: i64, field: &str) {
        let (records, rejected) = parsed;
        let before = rejected.len();
        records.retain(|(line, r)| match self.check(ts_of(r), now_ms) {
            Ok(()) => true,
            Err(reason) => {
                rejected.push(LineError {
                    line: *line,
                    field: field.to_owned(),
                    reason,
                });
                false
            }
        });
        if rejected.len() > before {
            rejected.sort_by_key(|e| e.line);
        }
    }
}

/// A record's event time, epoch ms.
pub fn ts_of(r: &Record) -> i64 {
    r.ts_ms()
}

fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{ms} ms"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{parse_body, DefaultType};

    const NOW: i64 = 1_800_000_000_000;

    fn limits() -> EventTimeLimits {
        EventTimeLimits::from_config(&IngestConfig::default())
    }

    #[test]
    fn defaults_allow_five_minutes_ahead_and_thirty_days_back() {
        let l = limits();
        assert!(l.check(NOW, NOW).is_ok());
        assert!(l.check(NOW + 300_000, NOW).is_ok());
        let err = l.check(NOW + 301_000, NOW).unwrap_err();
        assert!(err.contains("301 s ahead"), "{err}");
        assert!(l.check(NOW - 30 * 86_400_000, NOW).is_ok());
        let err = l.check(NOW - 31 * 86_400_000, NOW).unwrap_err();
        assert!(err.contains("31 days old"), "{err}");
    }

    #[test]
    fn max_age_zero_is_no_limit() {
        let l = EventTimeLimits::from_config(&IngestConfig {
            max_age_s: 0,
            ..IngestConfig::default()
        });
        assert!(l.check(0, NOW).is_ok());
        assert!(l.check(i64::MIN, NOW).is_ok());
        assert!(l.check(i64::MAX, NOW).is_err());
    }

    #[test]
    fn far_future_lines_become_rejected_lines_in_order() {
        let body = format!(
            "{}\n{}\n{}\n",
            r#"{"ts":"2099-01-01T00:00:00Z","service":"a","revision":"r","message":"x"}"#,
            format_args!(r#"{{"ts":{NOW},"service":"a","revision":"r","message":"y"}}"#),
            r#"{"ts":"nope","service":"a","revision":"r","message":"z"}"#,
        );
        let mut parsed = parse_body(&body, DefaultType::Log);
        limits().apply(&mut parsed, NOW, "ts");
        assert_eq!(parsed.0.len(), 1);
        assert_eq!(parsed.0[0].0, 2);
        let lines: Vec<usize> = parsed.1.iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 3]);
        assert_eq!(parsed.1[0].field, "ts");
        assert!(
            parsed.1[0].reason.contains("2099-01-01T00:00:00Z is"),
            "{:?}",
            parsed.1[0]
        );
    }
}
