//! `Idempotency-Key`: a resend of a request is answered with the first one's
//! result instead of being written again. Bounded; no IO.
//!
//! Semantics (also in the README): the key is scoped by tenant and endpoint.
//! The first request with a key claims it; a resend while it is still being
//! processed waits for it. Once it is answered with a final status (2xx,
//! 400, 403, 413, 415: what was written, if anything, is settled) the result
//! is remembered and every resend with the same key and the same body gets
//! it back (header `Idempotent-Replayed: true`) without writing anything. A
//! retryable answer (503, 408, 5xx: nothing was acknowledged) is forgotten,
//! so the resend is processed, and counted, once. The same key with a
//! different body is a client error (422). At most `ingest.idempotency_keys`
//! results are remembered, the least recently used forgotten first; a key
//! forgotten is processed again like a new request.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::StatusCode;
use tokio::sync::watch;

/// A remembered answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its status.
    pub status: StatusCode,
    /// Its JSON body.
    pub body: Bytes,
}

/// What to do with a request carrying a key.
#[derive(Debug)]
pub enum Claim {
    /// Process it, then [`Guard::complete`] with the answer.
    New(Guard),
    /// Answer this, write nothing.
    Replay(Stored),
    /// The first request with the key is still being processed: wait on
    /// this, then claim again.
    Wait(watch::Receiver<()>),
    /// The key was used with another body.
    Conflict,
}

#[derive(Debug)]
enum State {
    InFlight(watch::Receiver<()>),
    Done(Stored),
}

#[derive(Debug)]
struct Entry {
    digest: u64,
    state: State,
    tick: u64,
}

#[derive(Debug, Default)]
struct Lru {
    entries: HashMap<String, Entry>,
    /// tick → key, oldest first (ticks of entries only).
    order: BTreeMap<u64, String>,
    tick: u64,
}

impl Lru {
    fn touch(&mut self, key: &str) {
        self.tick += 1;
        if let Some(e) = self.entries.get_mut(key) {
            self.order.remove(&e.tick);
            e.tick = self.tick;
            self.order.insert(self.tick, key.to_owned());
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(e) = self.entries.remove(key) {
            self.order.remove(&e.tick);
        }
    }
}

/// The remembered keys, shared by the intake's handlers.
#[derive(Debug, Clone)]
pub struct Idempotency {
    inner: Arc<Mutex<Lru>>,
    capacity: usize,
}

impl Idempotency {
    /// Remembers up to `capacity` results (0: none, the header is ignored).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::default(),
            capacity,
        }
    }

    /// Whether keys are remembered at all.
    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        // Every update is a single step: a panicked holder left it consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims `key` for a request whose body has digest `digest`.
    pub fn claim(&self, key: &str, digest: u64) -> Claim {
        let mut lru = self.lock();
        let claim = match lru.entries.get(key) {
            Some(e) if e.digest != digest => return Claim::Conflict,
            Some(Entry {
                state: State::Done(stored),
                ..
            }) => Claim::Replay(stored.clone()),
            Some(Entry {
                state: State::InFlight(rx),
                ..
            }) => Claim::Wait(rx.clone()),
            None => {
                let (tx, rx) = watch::channel(());
                lru.tick += 1;
                let tick = lru.tick;
                lru.entries.insert(
                    key.to_owned(),
                    Entry {
                        digest,
                        state: State::InFlight(rx),
                        tick,
                    },
                );
                lru.order.insert(tick, key.to_owned());
                while lru.entries.len() > self.capacity {
                    let Some((_, oldest)) = lru.order.pop_first() else {
                        break;
                    };
                    lru.entries.remove(&oldest);
                }
                return Claim::New(Guard {
                    owner: self.clone(),
                    key: key.to_owned(),
                    done: Some(tx),
                });
            }
        };
        lru.touch(key);
        claim
    }
}

/// The claim of the request processing a key. Dropped without
/// [`Guard::complete`] (the request failed or was cancelled), the key is
/// forgotten and waiting resends claim it again.
#[derive(Debug)]
pub struct Guard {
    owner: Idempotency,
    key: String,
    done: Option<watch::Sender<()>>,
}

impl Guard {
    /// Records the answer: remembered if `status` is final, else forgotten.
    pub fn complete(mut self, status: StatusCode, body: Bytes) {
        let final_status = status.is_success()
            || matches!(
                status,
                StatusCode::BAD_REQUEST
                    | StatusCode::FORBIDDEN
                    | StatusCode::PAYLOAD_TOO_LARGE
                    | StatusCode::UNSUPPORTED_MEDIA_TYPE
            );
        let mut lru = self.owner.lock();
        match lru.entries.get_mut(&self.key) {
            Some(e) if final_status => e.state = State::Done(Stored { status, body }),
            Some(_) => lru.remove(&self.key),
            None => {}
        }
        drop(lru);
        // Waiters wake when the sender goes.
        self.done.take();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.done.is_some() {
            self.owner.lock().remove(&self.key);
        }
    }
}

/// FNV-1a 64 of a request body (same key, same body).
pub fn digest(body: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> (StatusCode, Bytes) {
        (StatusCode::OK, Bytes::from_static(b"{\"accepted\":1}"))
    }

    #[test]
    fn a_final_answer_is_replayed_and_a_retryable_one_forgotten() {
        let ids = Idempotency::new(10);
        let Claim::New(g) = ids.claim("k", 1) else {
            panic!()
        };
        let (s, b) = ok();
        g.complete(s, b.clone());
        assert!(matches!(ids.claim("k", 1), Claim::Replay(r) if r.body == b));
        assert!(matches!(ids.claim("k", 2), Claim::Conflict));
        let Claim::New(g) = ids.claim("other", 1) else {
            panic!()
        };
        g.complete(StatusCode::SERVICE_UNAVAILABLE, Bytes::new());
        assert!(matches!(ids.claim("other", 1), Claim::New(_)));
    }

    #[test]
    fn a_resend_in_flight_waits_and_a_dropped_claim_is_released() {
        let ids = Idempotency::new(10);
        let Claim::New(g) = ids.claim("k", 1) else {
            panic!()
        };
        let Claim::Wait(rx) = ids.claim("k", 1) else {
            panic!()
        };
        drop(g);
        // The sender is gone: the waiter wakes and claims anew.
        assert!(rx.has_changed().is_err());
        assert!(matches!(ids.claim("k", 1), Claim::New(_)));
    }

    #[test]
    fn the_least_recently_used_keys_are_forgotten_beyond_the_capacity() {
        let ids = Idempotency::new(2);
        for k in ["a", "b"] {
            let Claim::New(g) = ids.claim(k, 1) else {
                panic!()
            };
            let (s, b) = ok();
            g.complete(s, b);
        }
        // `a` used again: `b` is now the oldest.
        assert!(matches!(ids.claim("a", 1), Claim::Replay(_)));
        let Claim::New(g) = ids.claim("c", 1) else {
            panic!()
        };
        let (s, b) = ok();
        g.complete(s, b);
        assert!(matches!(ids.claim("a", 1), Claim::Replay(_)));
        assert!(matches!(ids.claim("b", 1), Claim::New(_)));
    }
}
