//! Stage: the fleet guard. Is something other than this deploy the cause?
//!
//! A flagged candidate of revision R of service S (deployed at t0, judged at
//! `at`) is marked `externally_correlated` when the evidence says an outage,
//! not the deploy, explains it. The guard never makes a regression out of
//! nothing: it only moves flagged candidates from "attributed to the deploy"
//! to "external", so the anytime-valid false-alarm guarantee of the test is
//! untouched. What an SRE looks at, each on the event:
//!
//! - **Witnesses** ([`Detector::witnesses`]): the same template (exception
//!   type + template) rising in services that did not deploy around t0, or in
//!   other revisions of S (the old revision of a rolling or canary deploy is
//!   the natural control). "Rising" is judged against the series' own rate
//!   over the lookback before t0. Another service is judged only up to its
//!   own watermark: counts it has not reported yet are not taken for zero.
//! - **Onset** ([`onset`]): a deploy-caused error starts with the first
//!   requests on the new revision; an outage starts at its own time. The
//!   change point of the signature's per-minute counts on R (Poisson
//!   likelihood ratio against the baseline rate), and how unlikely the quiet
//!   minutes before it are if the error had been there from R's first
//!   request.
//! - **Alignment**: witnesses whose rise lines up with that onset, pooled
//!   (their counts and expectations summed) so several weak ones add up.
//! - **Dependency cues** ([`dependency_cues`]): timeouts, refused or reset
//!   connections, 429/502/503/504, `Unavailable`, `upstream`; and the names
//!   of the upstreams the message calls (`calling payments-api`, `from
//!   mailer`, `desc = geo-lookup:`), matched against other services' errors
//!   naming the same upstream with a different template.
//! - **Went away**: the rise on R already ended while R still serves.
//!
//! Decision: the witness rule of before (two clear independent witnesses,
//! one overwhelming, or the same error rising in S's other revision); or
//! aligned pooled witnesses that are strong together and agree with a late
//! onset, a dependency cue or a went-away; otherwise a late onset, or a
//! dependency cue with some witness or naming its upstream, is *ambiguous*:
//! reported as attributed, with remediation held
//! (`hold_remediation_until_ms`) for `detector.hold_remediation_s`, and
//! re-published as external if it goes away by then
//! ([`crate::core::went_away`]).
//!
//! What it cannot tell apart: a deploy whose bug needs a later trigger (a
//! cron job, a cache expiry, a connection-pool leak that takes minutes to
//! exhaust) from an outage that began later and hit only this service
//! (both: late onset, no witness → ambiguous, remediation held, not
//! cleared); an outage that began exactly with the deploy and hit only the
//! deploying service (attributed; withdrawn if it names its upstream and
//! ends within the hold); a deploy that broke a shared dependency
//! (its callers rise too: external); and an upstream named only in remote
//! instances' errors (the fleet topic carries template hashes, not text).

use std::collections::BTreeSet;

use crate::config::DetectorConfig;

use crate::core::{load, predeploy, went_away, Detector, SigState, GUARD_LOOKBACK};
use crate::fleet::template_hash;
use crate::series::{Series, MINUTE_MS};
use crate::stats;

/// How close another series' rise must start to the onset to be aligned.
const ALIGN_MS: i64 = 3 * MINUTE_MS;
/// An onset this long after the revision's first requests may be late.
const LATE_ONSET_MS: i64 = 3 * MINUTE_MS;
/// How unlikely the quiet minutes before the onset must be, if the error had
/// been there from the first request, to call the onset late.
const LATE_ONSET_P: f64 = 1e-4;
/// The same for a dependency error to be called external on its onset alone.
const LATE_DEPENDENCY_P: f64 = 1e-7;

/// The guard's judgement of one flagged candidate.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Assessment {
    /// Why the deploy cannot be the cause (`Some`: externally correlated).
    pub(crate) external: Option<String>,
    /// Every cue found, decisive or not (`onset_late`, `dependency:timeout`,
    /// `upstream:payments-api`, `aligned:2`, `old_revision_rose`, `went_away`).
    pub(crate) cues: Vec<String>,
    /// Human-readable evidence for the cues (witness counts, onset test).
    pub(crate) evidence: Vec<String>,
    /// Event time of the rise's first minute on the new revision.
    pub(crate) onset_ms: Option<i64>,
    /// Attributed, but the evidence is ambiguous: hold remediation.
    pub(crate) ambiguous: bool,
}

/// One witness series' rise over a window.
#[derive(Debug, Clone, Copy)]
struct Rise {
    x: f64,
    mu: f64,
    /// The series' own negative binomial shape, from its hourly counts over
    /// the lookback (`None`: no excess variance, or too short a history).
    k: Option<f64>,
}

impl Rise {
    /// With a conservative fixed dispersion of 2 (the clear/overwhelming
    /// rules).
    fn p(self) -> f64 {
        stats::quasi_poisson_sf(self.x, self.mu, 2.0)
    }
    /// Against the series' own burstiness: errors come in hourly regimes, so
    /// a 2–3× hour is routine for a bursty series and rare for a calm one.
    fn p_own(self) -> f64 {
        match self.k {
            Some(k) => stats::nb_sf(self.x, self.mu, Some(k)),
            None => self.p(),
        }
    }
    /// Clear on its own: ratio ≥ 3 and p ≤ 0.001 with dispersion 2.
    fn clear(self) -> bool {
        self.x / self.mu >= 3.0 && self.p() <= 1e-3
    }
    /// Overwhelming: ratio ≥ 5 and p ≤ 1e-6.
    fn overwhelming(self) -> bool {
        self.x / self.mu >= 5.0 && self.p() <= 1e-6
    }
    /// Noticeable: ratio ≥ 2 and p ≤ 0.05 against its own burstiness.
    fn moderate(self) -> bool {
        self.x / self.mu >= 2.0 && self.p_own() <= 0.05
    }
}

/// The candidate being judged.
pub(crate) struct Subject<'a> {
    pub(crate) service: &'a str,
    pub(crate) revision: &'a str,
    pub(crate) signature: &'a str,
    pub(crate) t0: i64,
    pub(crate) at: i64,
    /// Expected events per unit of exposure (the baseline rate).
    pub(crate) base_rate: f64,
    pub(crate) per_request: bool,
    /// The new revision's events and exposure so far.
    pub(crate) x: f64,
    pub(crate) exposure: f64,
    /// A spike of an existing error (else a new signature).
    pub(crate) spike: bool,
}

impl Detector {
    /// Judges a flagged candidate (see the module docs).
    pub(crate) fn assess(&self, c: &Subject<'_>) -> Assessment {
        let mut a = Assessment::default();
        let svc = &self.services[c.service];
        let sig = &svc.sigs[c.signature];
        let exposure = if c.per_request {
            svc.traffic.get(c.revision)
        } else {
            None
        };
        let on = onset(
            sig.by_revision.get(c.revision),
            exposure,
            c.t0,
            c.at,
            c.base_rate,
        );
        note_onset(on, &mut a);
        let before = predeploy::before_deploy(
            sig,
            &svc.traffic,
            &predeploy::Candidate {
                revision: c.revision,
                t0: c.t0,
                base_rate: c.base_rate,
                per_request: c.per_request,
                x: c.x,
                exposure: c.exposure,
            },
        );
        note_before(before, c.x, &mut a);
        let surge = c
            .spike
            .then(|| load::surge(&svc.traffic, c.t0, a.onset_ms.unwrap_or(c.t0), c.at))
            .flatten();
        note_surge(surge, &mut a);
        let text_cues = dependency_cues(&sig.sample.template, &sig.sample.sample_message);
        let upstreams: BTreeSet<String> = upstream_names(&sig.sample.sample_message)
            .into_iter()
            .chain(upstream_names(&sig.sample.template))
            .collect();
        a.cues
            .extend(text_cues.iter().map(|c| format!("dependency:{c}")));
        a.cues
            .extend(upstreams.iter().map(|u| format!("upstream:{u}")));

        // Witnesses: the same template elsewhere; the aligned window starts
        // a little before the onset (or at the deploy).
        let aligned_from = a.onset_ms.map_or(c.t0, |o| (o - ALIGN_MS).max(c.t0));
        let w = self.witnesses(c, sig, &upstreams, aligned_from);
        if w.same_service_moderate {
            a.cues.push("old_revision_rose".into());
        }
        if w.aligned > 0 {
            a.cues.push(format!("aligned:{}", w.aligned));
        }
        a.evidence.extend(w.lines.iter().cloned());
        let late = on.is_some_and(|o| o.late);
        let signals = Signals {
            late,
            went_away: a.cues.iter().any(|c| c == "went_away"),
            same_rate: before.is_some_and(|b| b.same_rate),
            surge: surge.is_some(),
            dependency_text: !text_cues.is_empty(),
            names_upstream: !upstreams.is_empty(),
            // A dependency failure that began on its own time, minutes after
            // the revision's first requests, where a deploy-caused one would
            // have shown at once. Stricter than `onset_late` alone: hourly
            // error regimes can keep a deploy-caused spike quiet for its
            // first minutes.
            late_dependency: late
                && on.is_some_and(|o| o.p_late <= LATE_DEPENDENCY_P)
                && !text_cues.is_empty(),
            // A dependency failure already well under way before the deploy
            // that kept escalating after it: outages cascade (retries, pool
            // exhaustion) faster than the ×3 a slow burn allows, and a deploy
            // cannot start an error that ran before it.
            escalating_dependency: !text_cues.is_empty()
                && before.is_some_and(|b| {
                    !b.same_rate
                        && b.x >= predeploy::ESCALATION_MIN_RATIO * b.mu
                        && c.x < predeploy::ESCALATION_BEYOND_RATIO * b.predicted
                }),
        };
        match signals.external(&w) {
            Some(why) => a.external = Some(format!("{why}: {}", a.evidence.join("; "))),
            None => a.ambiguous = signals.ambiguous(&w),
        }
        a
    }

    /// Whether the template of `signature` was seen in the recent past in
    /// another service, or since the deploy in another revision of this one
    /// (one that still serves): an outage that
    /// started with this deploy could still show up there, so the candidate
    /// is held [`crate::core::GUARD_HOLD_MS`]. Time-bounded (counts in the
    /// lookback before `at`), so the answer depends on the data, not on which
    /// service's data arrived first.
    pub(crate) fn template_is_shared(
        &self,
        service: &str,
        revision: &str,
        signature: &str,
        t0: i64,
        at: i64,
    ) -> bool {
        let sig = &self.services[service].sigs[signature];
        let from = at - GUARD_LOOKBACK;
        let seen = |s: &Series| s.sum(from, at) > 0.0;
        // Another revision of this service is a witness only while it still
        // serves (a rolling or canary deploy): its errors since the deploy.
        if sig
            .by_revision
            .iter()
            .any(|(r, s)| r != revision && s.sum(t0, at) > 0.0)
        {
            return true;
        }
        let key = &sig.witness_key;
        let local = self
            .by_template
            .get(key)
            .into_iter()
            .flatten()
            .any(|(s, g)| {
                s != service
                    && self
                        .services
                        .get(s)
                        .and_then(|v| v.sigs.get(g))
                        .is_some_and(|g| g.by_revision.values().any(seen))
            });
        local
            || self.fleet.as_ref().is_some_and(|f| {
                let hash = template_hash(key);
                f.view
                    .services_with(&hash)
                    .filter(|s| !self.services.contains_key(*s))
                    .any(|s| {
                        f.view
                            .series(s, &hash)
                            .is_some_and(|m| m.values().any(seen))
                    })
            })
    }

    /// Whether an evaluation of `service` at `at` may decide its flagged
    /// candidates: every other service's counts up to `at` are in (its
    /// watermark reached `at`), or it is more than `fleet_wait_s` behind (down,
    /// or far behind in a replay: not waited for), or this service's own
    /// watermark is `fleet_wait_s` past `at` (waited long enough). The same
    /// for other detector instances and their services. Waiting makes the
    /// decision a function of the data, not of which service's data was read
    /// first, whenever the services' inputs arrive within `fleet_wait_s` of
    /// event time of each other.
    pub(crate) fn ready(&self, service: &str, at: i64) -> bool {
        let wait = fleet_wait_ms(&self.config);
        let own = self.service_watermark(service).unwrap_or(i64::MIN);
        if own >= at.saturating_add(wait) {
            return true;
        }
        let lateness = i64::from(self.config.allowed_lateness_s) * 1_000;
        let lagging = |w: i64| w < at && at - w <= wait;
        let local = self.services.iter().any(|(name, s)| {
            name != service && s.max_event_ms.is_some_and(|m| lagging(m - lateness))
        });
        if local {
            return false;
        }
        self.fleet.as_ref().is_none_or(|f| {
            f.view.lagging(at, wait).next().is_none()
                && !f
                    .view
                    .lagging_services(at, wait)
                    .any(|s| !self.services.contains_key(s))
        })
    }

    /// The witnesses of a candidate (see the module docs).
    fn witnesses(
        &self,
        c: &Subject<'_>,
        sig: &SigState,
        upstreams: &BTreeSet<String>,
        aligned_from: i64,
    ) -> Witnesses {
        let mut w = Witnesses::default();
        let window = Window {
            t0: c.t0,
            at: c.at,
            aligned_from,
            min_count: self.config.min_count as f64,
        };
        self.local_witnesses(c, sig, upstreams, &window, &mut w);
        self.fleet_witnesses(&sig.witness_key, &window, &mut w);
        w
    }

    /// Local services: the same template, or another error naming one of
    /// the same upstreams.
    fn local_witnesses(
        &self,
        c: &Subject<'_>,
        sig: &SigState,
        upstreams: &BTreeSet<String>,
        window: &Window,
        w: &mut Witnesses,
    ) {
        let key = &sig.witness_key;
        let lateness = i64::from(self.config.allowed_lateness_s) * 1_000;
        let mut seen_series: BTreeSet<(&str, &str)> = BTreeSet::new();
        for (other_service, svc) in &self.services {
            let same_service = other_service == c.service;
            let base_from = if same_service {
                c.t0 - GUARD_LOOKBACK
            } else {
                let deploys = svc.deploys.iter().map(|d| d.deploy.deployed_at_ms);
                let Some(from) = witness_base_from(deploys, c.t0, c.at) else {
                    continue;
                };
                from
            };
            // Counts of another service are complete only up to its own
            // watermark (to the minute).
            let until = if same_service {
                c.at
            } else {
                svc.max_event_ms.map_or(i64::MIN, |m| {
                    ((m - lateness).div_euclid(MINUTE_MS) * MINUTE_MS).min(c.at)
                })
            };
            for (other_sig, g) in &svc.sigs {
                let same_template = g.witness_key == *key;
                let names_upstream = !same_template
                    && !same_service
                    && !upstreams.is_empty()
                    && upstream_names(&g.sample.sample_message)
                        .iter()
                        .chain(upstream_names(&g.sample.template).iter())
                        .any(|u| upstreams.contains(u));
                if !(same_template || names_upstream) {
                    continue;
                }
                if !seen_series.insert((other_service, other_sig)) {
                    continue;
                }
                for (other_rev, series) in &g.by_revision {
                    if same_service && (other_rev == c.revision || !same_template) {
                        continue;
                    }
                    let label = if names_upstream {
                        format!("{other_service}@{other_rev} (same upstream)")
                    } else {
                        format!("{other_service}@{other_rev}")
                    };
                    w.judge(window, label, series, base_from, until, same_service);
                }
            }
        }
    }

    /// Other instances' services (never one held here: local state is
    /// authoritative, and this instance's own summaries echo back).
    fn fleet_witnesses(&self, key: &str, window: &Window, w: &mut Witnesses) {
        let Some(f) = &self.fleet else {
            return;
        };
        let hash = template_hash(key);
        for other_service in f.view.services_with(&hash) {
            if self.services.contains_key(other_service) {
                continue;
            }
            let Some(base_from) =
                witness_base_from(f.view.deploys(other_service), window.t0, window.at)
            else {
                continue;
            };
            let until = f.view.reported_until(other_service, window.at);
            for (other_rev, series) in f.view.series(other_service, &hash).into_iter().flatten() {
                let label = format!("{other_service}@{other_rev}");
                w.judge(window, label, series, base_from, until, false);
            }
        }
    }
}

/// Records the onset's cues: late, and went away.
fn note_onset(on: Option<Onset>, a: &mut Assessment) {
    a.onset_ms = on.map(|o| o.at_ms);
    let Some(o) = on else {
        return;
    };
    if o.late {
        a.cues.push("onset_late".into());
        a.evidence.push(format!(
            "onset {} min after the revision's first requests; {:.0} events before it where {:.1} were due at the later rate (p = {:.1e})",
            (o.at_ms - o.first_request_ms) / MINUTE_MS,
            o.before,
            o.due_before,
            o.p_late
        ));
    }
    if o.went_away {
        a.cues.push("went_away".into());
        a.evidence
            .push("the rise ended while the revision still serves".into());
    }
}

/// Records the rate before the deploy (`x`: the candidate's count).
fn note_before(before: Option<predeploy::BeforeDeploy>, x: f64, a: &mut Assessment) {
    let Some(b) = before else {
        return;
    };
    a.cues.push(if b.same_rate {
        "same_rate_before_deploy".into()
    } else {
        "rising_before_deploy".into()
    });
    a.evidence.push(format!(
        "{:.0} events in the {} min before the deploy vs {:.1} at the baseline rate; that rate predicts {:.1} on the new revision, {:.0} seen",
        b.x,
        b.window_ms / MINUTE_MS,
        b.mu,
        b.predicted,
        x
    ));
}

/// Records a traffic surge that came with a spike.
fn note_surge(surge: Option<load::Surge>, a: &mut Assessment) {
    let Some(sg) = surge else {
        return;
    };
    a.cues.push("traffic_surge".into());
    a.evidence.push(format!(
        "the service's traffic rose ×{:.1} with it ({:.0} requests/min since the onset vs {:.0} before the deploy)",
        sg.ratio(),
        sg.since,
        sg.before
    ));
}

/// The candidate's own cues, as the external rule reads them.
struct Signals {
    /// The onset came minutes after the revision's first requests.
    late: bool,
    /// The rise ended while the revision still serves.
    went_away: bool,
    /// The error already ran at this rate before the deploy.
    same_rate: bool,
    /// An existing error rose with a traffic surge.
    surge: bool,
    /// The error's text reads as a dependency failure.
    dependency_text: bool,
    /// The error names an upstream.
    names_upstream: bool,
    /// A dependency error whose onset alone says it began on its own time.
    late_dependency: bool,
    /// A dependency failure under way before the deploy that kept escalating.
    escalating_dependency: bool,
}

impl Signals {
    /// Why the deploy cannot be the cause, given the witnesses `w`, if it
    /// cannot (the first reason that holds, in order of strength).
    fn external(&self, w: &Witnesses) -> Option<String> {
        let strong_rule = w.clear >= 2 || w.overwhelming || w.same_service_clear;
        let old_rose = w.same_service_moderate;
        let pooled_p = fisher(w.fisher_ln, w.eligible);
        let pooled = (w.pooled.x > 0.0).then_some(w.pooled);
        let pooled_strong =
            pooled.is_some_and(|p| p.x / p.mu >= 2.0) && w.aligned > 0 && pooled_p <= 1e-4;
        // Pooled witnesses need corroboration from another kind of evidence:
        // the onset's own timing, or, for two or more, the error text.
        let corroborated = self.late || self.went_away || (w.aligned >= 2 && self.dependency_text);
        let why = if self.same_rate {
            "the error already ran at this rate before the deploy".to_owned()
        } else if self.escalating_dependency {
            "a dependency failure already under way before the deploy kept escalating".to_owned()
        } else if self.surge {
            "an existing error that rose with a traffic surge".to_owned()
        } else if strong_rule {
            "the same error rose where this deploy cannot be the cause".to_owned()
        } else if self.late_dependency && !(pooled_strong && corroborated) && !old_rose {
            "a dependency error that began minutes after the revision's first requests".to_owned()
        } else if old_rose && (self.late || (pooled_strong && corroborated)) {
            "the error rose on the old revision too, and began after the deploy".to_owned()
        } else if let Some(p) = pooled.filter(|_| pooled_strong && corroborated) {
            format!(
                "{} of {} other series rose with it from its onset ({:.0} vs {:.1} expected; Fisher p = {:.1e} over all {})",
                w.aligned, w.eligible, p.x, p.mu, pooled_p, w.eligible
            )
        } else {
            return None;
        };
        Some(why)
    }

    /// Attributed, but ambiguous: a dependency failure that names its
    /// upstream, with nothing else against the deploy, looks the same as an
    /// outage that began with it and hit only this service: remediation
    /// waits, and `went_away` re-checks it. (A bare "timeout" does not: lock
    /// and pool timeouts are a deploy's bugs as often.)
    fn ambiguous(&self, w: &Witnesses) -> bool {
        self.late
            || (self.dependency_text
                && (w.aligned > 0 || w.same_service_moderate || self.names_upstream))
    }
}

/// The candidate's windows, as the witnesses are judged over them.
struct Window {
    /// The deploy: the clear rules look at [t0, at).
    t0: i64,
    at: i64,
    /// The aligned window starts here (a little before the onset).
    aligned_from: i64,
    /// `detector.min_count`.
    min_count: f64,
}

impl Witnesses {
    /// Judges one series of another service or revision, its counts known up
    /// to `until`.
    fn judge(
        &mut self,
        window: &Window,
        label: String,
        series: &Series,
        base_from: i64,
        until: i64,
        same_service: bool,
    ) {
        let Window {
            t0,
            at,
            aligned_from,
            min_count,
        } = *window;
        let until = until.min(at);
        if let Some(r) = rise(series, t0, t0, until, base_from, min_count) {
            if r.clear() {
                if same_service {
                    self.same_service_clear = true;
                } else {
                    self.clear += 1;
                }
                self.overwhelming |= !same_service && r.overwhelming();
                self.lines.push(format!(
                    "{label}: {:.0} in the window vs {:.1} expected",
                    r.x, r.mu
                ));
            }
        }
        // Aligned with the onset: judged from shortly before it. Every
        // eligible witness is pooled, risen or not (pooling only the ones
        // that rose would find outages in noise).
        if let Some(r) = rise(series, t0, aligned_from, until, base_from, 0.0) {
            if !same_service && r.x > 0.0 && r.x >= r.mu {
                self.fisher_ln += r.p_own().max(1e-300).ln();
            }
            if !same_service {
                self.eligible += 1;
            }
            if r.x >= min_count && r.moderate() {
                if same_service {
                    self.same_service_moderate = true;
                } else {
                    self.aligned += 1;
                    self.pooled.x += r.x;
                    self.pooled.mu += r.mu;
                }
                if !r.clear() {
                    self.lines.push(format!(
                        "{label}: {:.0} since the onset vs {:.1} expected",
                        r.x, r.mu
                    ));
                }
            }
        }
    }
}

#[derive(Debug, Default)]
struct Witnesses {
    /// Other services with a clear rise over [t0, at).
    clear: usize,
    overwhelming: bool,
    /// Another revision of this service with a clear rise.
    same_service_clear: bool,
    /// Another revision of this service rising with the onset.
    same_service_moderate: bool,
    /// Other services rising with the onset (moderately or more).
    aligned: usize,
    /// Their counts and expectations, summed.
    pooled: Rise,
    /// Eligible other-service witness series, and Σ ln p over them (each
    /// against its own burstiness; 0 for those that did not rise).
    eligible: usize,
    fisher_ln: f64,
    lines: Vec<String>,
}

impl Default for Rise {
    fn default() -> Self {
        Self {
            x: 0.0,
            mu: 0.0,
            k: None,
        }
    }
}

/// How `series` did over [from, until) against its own rate over
/// [base_from, t0) (`None`: too few events, or no baseline span).
fn rise(
    series: &Series,
    t0: i64,
    from: i64,
    until: i64,
    base_from: i64,
    min_count: f64,
) -> Option<Rise> {
    if until <= from || t0 <= base_from {
        return None;
    }
    let x = series.sum(from, until);
    if x < min_count {
        return None;
    }
    let base = series.sum(base_from, t0);
    let per_ms = (base + 1.0) / (t0 - base_from) as f64;
    let mu = (until - from) as f64 * per_ms;
    let hours = series.hourly(base_from, t0);
    let k = stats::nb_shape(hours.iter().map(|(h, v)| {
        let covered = (h + crate::series::HOUR_MS).min(t0) - (*h).max(base_from);
        (*v, covered as f64 * per_ms)
    }));
    Some(Rise { x, mu, k })
}

/// Fisher's combination of independent p-values: P(χ²₂ₙ ≥ −2 Σ ln pᵢ).
fn fisher(sum_ln_p: f64, n: usize) -> f64 {
    if n == 0 {
        return 1.0;
    }
    // P(χ²₂ₙ ≥ 2y) = e^(−y) Σ_{j<n} y^j / j!, y = −Σ ln pᵢ.
    let y = -sum_ln_p;
    let (mut term, mut sum) = (1.0f64, 1.0f64);
    for j in 1..n {
        term *= y / j as f64;
        sum += term;
    }
    ((-y).exp() * sum).min(1.0)
}

/// The change point of a signature's counts on the new revision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Onset {
    /// Start of the first minute of the rise.
    pub(crate) at_ms: i64,
    /// The revision's first minute with requests (or the deploy's minute).
    pub(crate) first_request_ms: i64,
    /// Events before the onset, and how many the post-onset rate predicts
    /// for the exposure before it.
    pub(crate) before: f64,
    pub(crate) due_before: f64,
    /// P(at most `before` events | `due_before` expected).
    pub(crate) p_late: f64,
    /// Whether the onset is late (a deploy-caused error would have shown).
    pub(crate) late: bool,
    /// The last 3 minutes with exposure are far below the rate since the
    /// onset.
    pub(crate) went_away: bool,
}

/// Finds the onset of the rise of `counts` over [t0, at): the minute τ that
/// maximizes the Poisson likelihood ratio of "rate r₁ from τ on" against the
/// baseline rate `base_rate` per unit of exposure (per request with
/// `exposure`, else per minute).
pub(crate) fn onset(
    counts: Option<&Series>,
    exposure: Option<&Series>,
    t0: i64,
    at: i64,
    base_rate: f64,
) -> Option<Onset> {
    let counts = counts?;
    let from = t0.div_euclid(MINUTE_MS) * MINUTE_MS;
    let mut minutes: Vec<(i64, f64, f64)> = Vec::new();
    let mut m = from;
    while m < at {
        let x = counts.sum(m.max(t0), (m + MINUTE_MS).min(at));
        let e = match exposure {
            Some(s) => s.sum(m, m + MINUTE_MS),
            None => 1.0,
        };
        minutes.push((m, x, e));
        m += MINUTE_MS;
    }
    let first = minutes.iter().position(|(_, _, e)| *e > 0.0)?;
    let minutes = &minutes[first..];
    let lam0 = base_rate.max(1e-12);
    let (total_x, total_e) = minutes
        .iter()
        .fold((0.0, 0.0), |(x, e), (_, mx, me)| (x + mx, e + me));
    let (mut best, mut best_llr) = (0, f64::NEG_INFINITY);
    let (mut after_x, mut after_e) = (total_x, total_e);
    for (i, (_, x, e)) in minutes.iter().enumerate() {
        if after_e > 0.0 && after_x > 0.0 {
            let r1 = after_x / after_e;
            if r1 > lam0 {
                let llr = after_x * (r1 / lam0).ln() - (r1 - lam0) * after_e;
                // Earliest of equals: ties favour the deploy.
                if llr > best_llr + 1e-9 {
                    best_llr = llr;
                    best = i;
                }
            }
        }
        after_x -= x;
        after_e -= e;
    }
    let (before, before_e) = minutes[..best]
        .iter()
        .fold((0.0, 0.0), |(x, e), (_, mx, me)| (x + mx, e + me));
    let (post_x, post_e) = (total_x - before, total_e - before_e);
    let r1 = if post_e > 0.0 { post_x / post_e } else { 0.0 };
    let due_before = r1 * before_e;
    let p_late = if due_before > 0.0 {
        1.0 - stats::quasi_poisson_sf(before + 1.0, due_before, 1.0)
    } else {
        1.0
    };
    let first_request_ms = minutes[0].0;
    let at_ms = minutes[best].0;
    let late = at_ms - first_request_ms >= LATE_ONSET_MS && p_late <= LATE_ONSET_P;
    let tail: Vec<_> = minutes[best..]
        .iter()
        .filter(|(_, _, e)| *e > 0.0)
        .rev()
        .take(went_away::TAIL_MINUTES)
        .collect();
    // Went away: the last three minutes with exposure are far below the
    // rate since the onset (P ≤ 1e-3 if it had persisted).
    let (tail_x, tail_e) = tail
        .iter()
        .fold((0.0, 0.0), |(x, e), (_, mx, me)| (x + mx, e + me));
    let (rise_x, rise_e) = (post_x - tail_x, post_e - tail_e);
    let rise_rate = if rise_e > 0.0 { rise_x / rise_e } else { 0.0 };
    let p_persisted = 1.0 - stats::quasi_poisson_sf(tail_x + 1.0, rise_rate * tail_e, 1.0);
    let went_away = minutes.len() - best >= 6
        && tail.len() == went_away::TAIL_MINUTES
        && rise_e > 0.0
        && p_persisted <= went_away::PERSIST_P;
    Some(Onset {
        at_ms,
        first_request_ms,
        before,
        due_before,
        p_late,
        late,
        went_away,
    })
}

/// The dependency-failure classes a message shows (lowercase names).
pub(crate) fn dependency_cues(template: &str, message: &str) -> Vec<&'static str> {
    const CUES: [(&str, &[&str]); 7] = [
        (
            "timeout",
            &[
                "timeout",
                "timed out",
                "deadline exceeded",
                "deadline_exceeded",
            ],
        ),
        (
            "connection",
            &[
                "connection refused",
                "connection reset",
                "econnrefused",
                "econnreset",
                "etimedout",
                "broken pipe",
                "no route to host",
                "connection closed",
                "could not connect",
                "failed to connect",
                "unable to connect",
                "socket hang up",
                "connect error",
            ],
        ),
        (
            "rate_limited",
            &["429", "too many requests", "rate limit", "throttl"],
        ),
        (
            "unavailable",
            &[
                "503",
                "502",
                "504",
                "unavailable",
                "bad gateway",
                "gateway timeout",
                "not available",
            ],
        ),
        ("upstream", &["upstream", "downstream", "dependency"]),
        // Hystrix, resilience4j, Polly, gobreaker: the caller stopped calling
        // a failing dependency.
        (
            "circuit_open",
            &[
                "circuit breaker",
                "circuitbreaker",
                "circuit is open",
                "broken circuit",
            ],
        ),
        (
            "dns",
            &[
                "name resolution",
                "could not resolve",
                "nxdomain",
                "getaddrinfo",
            ],
        ),
    ];
    let text = format!("{template}\n{message}").to_ascii_lowercase();
    CUES.iter()
        .filter(|(_, needles)| needles.iter().any(|n| text.contains(n)))
        .map(|(name, _)| *name)
        .collect()
}

/// Names of the upstreams a message calls: the word after `calling`, `from`,
/// `to`, `upstream`, `host`, `desc =` (gRPC), and host-like words
/// (`payments-api`, `geo.internal:443`). Lowercase, without ports.
/// The host of a `host:port` or `scheme://host[:port]/…` word, when the
/// host is a name (not an address, and not a redacted one).
fn host_of_address(word: &str) -> Option<&str> {
    let rest = word.split_once("://").map_or(word, |(_, r)| r);
    let (host, tail) = match rest.find([':', '/']) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => return None,
    };
    let has_port = rest[host.len()..].starts_with(':')
        && tail.chars().take_while(char::is_ascii_digit).count() >= 2;
    let is_url = word.contains("://");
    let named = host.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && host.chars().any(|c| c == '-' || c == '.' || c == '_') | (host.len() >= 4);
    ((has_port || is_url) && named).then_some(host)
}

pub(crate) fn upstream_names(text: &str) -> Vec<String> {
    const AFTER: [&str; 9] = [
        "breaker",
        "calling",
        "from",
        "to",
        "upstream",
        "host",
        "service",
        "connecting",
        "desc",
    ];
    const NOT_NAMES: [&str; 12] = [
        "the", "a", "an", "peer", "server", "host", "remote", "upstream", "client", "service",
        "request", "=",
    ];
    let words: Vec<String> = text
        .split(|c: char| {
            c.is_whitespace() || c == ',' || c == '(' || c == ')' || c == '"' || c == '\''
        })
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_end_matches([':', '.', ';']).to_ascii_lowercase())
        .collect();
    let clean = |w: &str| -> Option<String> {
        let w = w.split_once("://").map_or(w, |(_, rest)| rest);
        let w = w.split(':').next().unwrap_or(w);
        let w = w.split('/').find(|p| !p.is_empty()).unwrap_or(w);
        let letters = w.chars().filter(char::is_ascii_alphabetic).count();
        (letters >= 3
            && !w.contains("<*>")
            && !NOT_NAMES.contains(&w)
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'))
        .then(|| w.to_owned())
    };
    let mut out = BTreeSet::new();
    for (i, w) in words.iter().enumerate() {
        if AFTER.contains(&w.as_str()) {
            let mut j = i + 1;
            while j < words.len() && (words[j] == "=" || NOT_NAMES.contains(&words[j].as_str())) {
                j += 1;
            }
            if let Some(n) = words.get(j).and_then(|n| clean(n)) {
                out.insert(n);
            }
        }
        if let Some(n) = host_of_address(w).and_then(&clean) {
            out.insert(n);
        }
        let hostlike = w.ends_with("-api")
            || w.ends_with("-svc")
            || w.ends_with("-service")
            || w.ends_with(".internal")
            || w.ends_with(".local")
            || w.ends_with(".svc");
        if hostlike {
            if let Some(n) = clean(w) {
                out.insert(n);
            }
        }
    }
    // Words that follow `to`/`from` but are no upstream.
    const COMMON: [&str; 10] = [
        "acquire", "read", "write", "connect", "parse", "load", "send", "fetch", "process", "user",
    ];
    out.into_iter()
        .filter(|n| !COMMON.contains(&n.as_str()))
        .collect()
}

/// Where another service's baseline for the fleet guard starts, or `None`
/// when it is no witness for a deploy at `t0` judged at `at`. Its baseline
/// starts after its own latest deploy before t0, so an older culprit's steady
/// errors do not look like a rise; a deploy inside the window makes its rise
/// prove nothing.
pub(crate) fn witness_base_from(
    deploys: impl Iterator<Item = i64>,
    t0: i64,
    at: i64,
) -> Option<i64> {
    let mut last_before = None;
    for t in deploys {
        if t >= t0 - 5 * MINUTE_MS && t < at {
            return None;
        }
        if t < t0 {
            last_before = Some(last_before.map_or(t, |l: i64| l.max(t)));
        }
    }
    let base_from = last_before.map_or(t0 - GUARD_LOOKBACK, |l| (t0 - GUARD_LOOKBACK).max(l));
    (t0 - base_from >= 30 * MINUTE_MS).then_some(base_from)
}

/// How long a flagged regression may wait for lagging services and
/// instances (event time).
pub(crate) fn fleet_wait_ms(config: &DetectorConfig) -> i64 {
    i64::from(config.fleet_wait_s) * 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_minute(values: &[f64]) -> Series {
        let mut s = Series::default();
        for (i, v) in values.iter().enumerate() {
            if *v > 0.0 {
                s.add(i as i64 * MINUTE_MS, *v);
            }
        }
        s
    }

    #[test]
    fn a_rise_from_the_first_request_is_no_late_onset() {
        let c = per_minute(&[4.0, 5.0, 3.0, 6.0, 4.0, 5.0]);
        let o = onset(Some(&c), None, 0, 6 * MINUTE_MS, 0.1).unwrap();
        assert_eq!(o.at_ms, 0);
        assert!(!o.late, "{o:?}");
    }

    #[test]
    fn an_outage_minutes_after_the_deploy_has_a_late_onset() {
        let c = per_minute(&[0.0, 0.0, 0.0, 0.0, 0.0, 6.0, 5.0, 7.0, 6.0]);
        let o = onset(Some(&c), None, 0, 9 * MINUTE_MS, 0.1).unwrap();
        assert_eq!(o.at_ms, 5 * MINUTE_MS);
        assert!(o.late, "{o:?}");
        // Too few events to tell: a late first event is no evidence.
        let c = per_minute(&[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
        let o = onset(Some(&c), None, 0, 6 * MINUTE_MS, 0.1).unwrap();
        assert!(!o.late, "{o:?}");
    }

    #[test]
    fn the_onset_counts_from_the_revisions_first_requests() {
        // Rolling deploy: the revision gets traffic from minute 4 only.
        let c = per_minute(&[0.0, 0.0, 0.0, 0.0, 5.0, 6.0, 5.0]);
        let t = per_minute(&[0.0, 0.0, 0.0, 0.0, 100.0, 100.0, 100.0]);
        let o = onset(Some(&c), Some(&t), 0, 7 * MINUTE_MS, 0.001).unwrap();
        assert_eq!(
            (o.first_request_ms, o.at_ms),
            (4 * MINUTE_MS, 4 * MINUTE_MS)
        );
        assert!(!o.late);
    }

    #[test]
    fn an_ended_rise_went_away() {
        let c = per_minute(&[0.0, 0.0, 0.0, 9.0, 9.0, 9.0, 0.0, 0.0, 0.0]);
        let o = onset(Some(&c), None, 0, 9 * MINUTE_MS, 0.1).unwrap();
        assert!(o.went_away && o.late, "{o:?}");
    }

    #[test]
    fn addresses_and_breakers_name_their_upstream() {
        assert_eq!(
            upstream_names("Connection refused (catalog-db:3306) request_id=1"),
            vec!["catalog-db"]
        );
        assert_eq!(
            upstream_names("request to http://kafka-rest:8082/v1/quote failed"),
            vec!["kafka-rest"]
        );
        assert_eq!(
            upstream_names("circuit breaker 'feature-flags' is OPEN; rejecting call"),
            vec!["feature-flags"]
        );
        assert!(upstream_names("dial tcp [REDACTED:ip]:443: i/o timeout").is_empty());
        assert!(upstream_names("at 12:30:01 the job ran").is_empty());
        assert_eq!(
            dependency_cues("", "circuit breaker 'x' is OPEN"),
            vec!["circuit_open"]
        );
        assert_eq!(
            dependency_cues("", "reason: socket hang up"),
            vec!["connection"]
        );
    }

    #[test]
    fn dependency_cues_and_upstream_names() {
        let t = "Timeout after <*>ms calling payments-api (request_id=<*>)";
        assert_eq!(dependency_cues(t, ""), vec!["timeout"]);
        assert_eq!(upstream_names(t), vec!["payments-api"]);
        let g = "rpc error: code = Unavailable desc = geo-lookup: connection refused";
        assert_eq!(dependency_cues(g, ""), vec!["connection", "unavailable"]);
        assert_eq!(upstream_names(g), vec!["geo-lookup"]);
        let m = "429 Too Many Requests from mailer";
        assert_eq!(dependency_cues(m, ""), vec!["rate_limited"]);
        assert_eq!(upstream_names(m), vec!["mailer"]);
        assert!(dependency_cues("KeyError: 'usd'", "").is_empty());
        assert!(upstream_names("KeyError: 'usd'").is_empty());
        assert!(upstream_names("Failed to acquire lock order-<*> after <*> retries").is_empty());
    }

    #[test]
    fn a_witness_deploying_in_the_window_proves_nothing() {
        let h = 60 * MINUTE_MS;
        assert_eq!(
            witness_base_from([].into_iter(), 10 * h, 11 * h),
            Some(4 * h)
        );
        assert_eq!(
            witness_base_from([10 * h].into_iter(), 10 * h, 11 * h),
            None
        );
        assert_eq!(
            witness_base_from([9 * h].into_iter(), 10 * h, 11 * h),
            Some(9 * h)
        );
        assert_eq!(
            witness_base_from([10 * h - 20 * MINUTE_MS].into_iter(), 10 * h, 11 * h),
            None,
            "too short a baseline"
        );
    }
}
