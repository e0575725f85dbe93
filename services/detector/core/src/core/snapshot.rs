//! A service's detector state split for the changelog: one *head* (everything
//! but the signatures: traffic, deploys, emitted and held regression ids) and
//! one part per signature, each serialized on its own.
//!
//! A whole-service snapshot grows with its signatures (thousands, each with a
//! sample message and stack), past Kafka's message limit; split, each part is
//! bounded by one signature's state, and only the parts that changed need to
//! be written again. Restoring the head and all its parts gives back exactly
//! the state [`Detector::snapshot`] describes (a unit test checks it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Detector, ServiceSnapshot, ServiceState, SigState};

/// One service's state, serialized as a head and one part per signature.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotParts {
    /// Everything but the signatures (JSON).
    pub head: Vec<u8>,
    /// (signature id, its state as JSON), in signature order.
    pub signatures: Vec<(String, Vec<u8>)>,
}

/// The head as written: the state with its signature map left empty, so a
/// field added to the state is carried without touching this file.
#[derive(Serialize)]
struct HeadRef<'a> {
    max_event_ms: Option<i64>,
    state: &'a ServiceState,
}

#[derive(Deserialize)]
struct Head {
    max_event_ms: Option<i64>,
    state: ServiceState,
}

impl ServiceSnapshot {
    /// How many signatures the snapshot holds.
    pub fn signatures(&self) -> usize {
        self.state.sigs.len()
    }
}

impl Detector {
    /// `service`'s state as parts (`None` if it has none, e.g. evicted). Takes
    /// `&mut self` only to serialize the head without the signatures in place
    /// (no copy); the state is unchanged afterwards.
    pub fn snapshot_parts(
        &mut self,
        service: &str,
    ) -> Option<Result<SnapshotParts, serde_json::Error>> {
        let max_event_ms = self.services.get(service)?.max_event_ms;
        let state = self.services.get_mut(service)?;
        let sigs = std::mem::take(&mut state.sigs);
        let head = serde_json::to_vec(&HeadRef {
            max_event_ms,
            state,
        });
        let signatures: Result<Vec<(String, Vec<u8>)>, serde_json::Error> = sigs
            .iter()
            .map(|(id, sig)| Ok((id.clone(), serde_json::to_vec(sig)?)))
            .collect();
        state.sigs = sigs;
        Some(head.and_then(|head| {
            Ok(SnapshotParts {
                head,
                signatures: signatures?,
            })
        }))
    }

    /// Installs `service`'s state from its parts (replacing any in memory),
    /// as [`Detector::restore`] does. Returns how many signatures it holds.
    pub fn restore_parts<'a>(
        &mut self,
        service: &str,
        head: &[u8],
        signatures: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<usize, serde_json::Error> {
        let Head {
            max_event_ms,
            mut state,
        } = serde_json::from_slice(head)?;
        let mut sigs = BTreeMap::new();
        for (id, bytes) in signatures {
            let sig: SigState = serde_json::from_slice(bytes)?;
            sigs.insert(id.to_owned(), sig);
        }
        let n = sigs.len();
        state.sigs = sigs;
        self.restore(ServiceSnapshot {
            service: service.to_owned(),
            max_event_ms,
            state,
        });
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::DetectorConfig;
    use selfheal_schemas::{AnyEvent, SignatureCount, Traffic};

    use super::*;

    fn count(sig: usize, t: i64) -> AnyEvent {
        AnyEvent::SignatureCount(SignatureCount {
            service: "checkout".into(),
            revision: "a".into(),
            signature: format!("{sig:016x}"),
            template: format!("error {sig} <*>"),
            exception_type: Some("KeyError".into()),
            level: "error".into(),
            count: 3,
            first_seen_ms: t,
            last_seen_ms: t + 1_000,
            sample_message: format!("error {sig} 42"),
            sample_stack: Some("Traceback …".into()),
            frames: vec![],
            trace_id: None,
        })
    }

    #[test]
    fn parts_restore_exactly_the_snapshot() {
        let mut d = Detector::new(DetectorConfig::default());
        for i in 0..50 {
            d.on_event(&count(i, 1_000_000 + i as i64 * 60_000));
        }
        d.on_event(&AnyEvent::Traffic(Traffic {
            service: "checkout".into(),
            revision: "a".into(),
            window_start_ms: 1_000_000,
            window_s: 60,
            requests: 100,
            errors: None,
        }));
        let before = serde_json::to_value(d.snapshot("checkout").unwrap()).unwrap();
        let parts = d.snapshot_parts("checkout").unwrap().unwrap();
        assert_eq!(parts.signatures.len(), 50);
        // Taking parts leaves the state as it was.
        assert_eq!(
            serde_json::to_value(d.snapshot("checkout").unwrap()).unwrap(),
            before
        );
        let mut e = Detector::new(DetectorConfig::default());
        let n = e
            .restore_parts(
                "checkout",
                &parts.head,
                parts
                    .signatures
                    .iter()
                    .map(|(id, b)| (id.as_str(), b.as_slice())),
            )
            .unwrap();
        assert_eq!(n, 50);
        let after = serde_json::to_value(e.snapshot("checkout").unwrap()).unwrap();
        assert_eq!(after, before);
        assert_eq!(e.stats().signatures, d.stats().signatures);
        assert_eq!(e.stats().buckets, d.stats().buckets);
    }

    #[test]
    fn no_parts_for_an_unknown_service() {
        let mut d = Detector::new(DetectorConfig::default());
        assert!(d.snapshot_parts("nope").is_none());
    }
}
