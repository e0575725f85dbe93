//! The detector's pure core: events in, regressions out; no IO, no clock.
//!
//! Time is the events' own (event time). The watermark is the latest event
//! time seen minus `allowed_lateness_s`; a deploy's revision is evaluated at
//! each minute boundary the watermark passes, from the deploy until
//! `window_minutes` later (or only at the end with `sequential = false`).
//! Late events still count in their buckets; events older than the whole
//! baseline horizon are counted in [`DetectorStats::too_old`] and logged by the
//! adapter, never silently dropped.
//!
//! At each evaluation of revision R (deployed at T, previous revision P), for
//! every signature of the service:
//! - x = R's count in [T, now); exposure n = R's requests in [T, now) (or minutes
//!   when there is no traffic, `rate_basis = per_time`);
//! - baseline = other revisions' counts and requests in [T − baseline_days, T),
//!   plus P's concurrent counts in [T, now) when P still serves traffic (canary /
//!   rolling deploys are compared against the live previous revision);
//! - expected μ = n · (baseline count + 1) / baseline exposure (the +1 keeps a
//!   short baseline conservative); over-dispersion as a negative binomial
//!   shape k from the baseline's hourly
//!   counts (method of moments), so bursty errors need more evidence;
//! - a signature absent from the baseline is `new` once x ≥
//!   `new_signature_min_count`; otherwise the mixture e-value for ratio ≥ 1.5 is
//!   adjusted with e-BH across the service's signatures and the signature is a
//!   `spike` when q ≤ α, x/μ ≥ `min_rate_ratio` and x ≥ `min_count`.
//!
//! Before emitting, the fleet guard looks for the same template rising in the
//! same window in services that did not deploy, or in other revisions of the
//! same service; if found, the regression is marked externally correlated with
//! that evidence.

use std::collections::{BTreeMap, BTreeSet};

use selfheal_common::config::DetectorConfig;
use selfheal_common::ids::stable_id;
use selfheal_schemas::{
    AnyEvent, Build, BuildStatus, Deploy, RateBasis, Regression, RegressionKind, SignatureCount,
    Traffic,
};

use crate::series::{Series, HOUR_MS, MINUTE_MS};
use crate::stats;

const DAY_MS: i64 = 24 * HOUR_MS;
/// How long a flagged signature whose template also exists in other services
/// is held, waiting for fleet evidence, before it is emitted as attributable.
const GUARD_HOLD_MS: i64 = 3 * MINUTE_MS;
/// How long after a deploy the rate basis may wait for the revision's first
/// traffic before falling back to per-time rates (its traffic is not reported).
const BASIS_WAIT_MS: i64 = 5 * MINUTE_MS;

/// Counters describing the detector's state and input quality.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetectorStats {
    /// Events that arrived behind the watermark but were still counted.
    pub late: u64,
    /// Events older than the baseline horizon: reported, not counted.
    pub too_old: u64,
    /// Signatures evicted because a service exceeded its signature cap.
    pub evicted_signatures: u64,
    /// Signatures currently tracked.
    pub signatures: usize,
    /// Buckets currently held across all series.
    pub buckets: usize,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct SigState {
    sample: SignatureCount,
    template_key: String,
    last_seen_ms: i64,
    /// revision → counts.
    by_revision: BTreeMap<String, Series>,
    /// Revisions flagged (and attributed) for this signature: their counts
    /// and traffic stay out of later baselines, which must not learn a
    /// regression as normal (nor its burstiness as the signature's noise).
    regressed: BTreeSet<String>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct DeployState {
    deploy: Deploy,
    /// Next evaluation time (a minute boundary).
    next_eval_ms: i64,
    /// Cached per-signature historical baseline: (count, exposure, NB shape).
    baseline: BTreeMap<String, (f64, f64, Option<f64>)>,
    /// Historical baseline exposure basis decided at the first evaluation.
    per_request: Option<bool>,
    done: bool,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct ServiceState {
    sigs: BTreeMap<String, SigState>,
    /// revision → requests.
    traffic: BTreeMap<String, Series>,
    deploys: Vec<DeployState>,
    first_seen_ms: Option<i64>,
    /// Regression ids already emitted: one regression per key, however often
    /// the rule fires again (and across restarts, via the changelog).
    emitted: BTreeSet<String>,
    /// Regression id → when it was first flagged while held for the guard.
    held: BTreeMap<String, i64>,
}

/// The checkpointed state of one service: what a restarted or newly assigned
/// detector instance restores instead of re-reading the baseline days.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ServiceSnapshot {
    /// The service.
    pub service: String,
    /// The latest event time the detector had seen when the snapshot was taken.
    pub max_event_ms: Option<i64>,
    state: ServiceState,
}

/// The detector state for all services it owns.
#[derive(Debug, Default)]
pub struct Detector {
    config: DetectorConfig,
    services: BTreeMap<String, ServiceState>,
    /// template key → (service, signature): the fleet guard's index.
    by_template: BTreeMap<String, BTreeSet<(String, String)>>,
    max_event_ms: Option<i64>,
    last_compaction_ms: i64,
    /// Services changed since the last [`Detector::take_touched`].
    touched: BTreeSet<String>,
    stats: DetectorStats,
}

/// One candidate signature at one evaluation.
struct Candidate {
    signature: String,
    kind: RegressionKind,
    x: f64,
    mu: f64,
    p: f64,
    e: f64,
    requests: Option<f64>,
    baseline_exposure: f64,
    per_request: bool,
}

impl Detector {
    /// A detector with the given settings.
    pub fn new(config: DetectorConfig) -> Self {
        Self {
            config,
            last_compaction_ms: i64::MIN,
            ..Default::default()
        }
    }

    /// Current counters.
    pub fn stats(&self) -> DetectorStats {
        let mut s = self.stats.clone();
        s.signatures = self.services.values().map(|v| v.sigs.len()).sum();
        s.buckets = self
            .services
            .values()
            .map(|v| {
                v.sigs
                    .values()
                    .flat_map(|g| g.by_revision.values())
                    .chain(v.traffic.values())
                    .map(Series::buckets)
                    .sum::<usize>()
            })
            .sum();
        s
    }

    /// The services whose state changed since the last call (to checkpoint).
    pub fn take_touched(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.touched)
    }

    /// The checkpointable state of `service` (`None` if it has none, e.g.
    /// after eviction).
    pub fn snapshot(&self, service: &str) -> Option<ServiceSnapshot> {
        self.services.get(service).map(|s| ServiceSnapshot {
            service: service.to_owned(),
            max_event_ms: self.max_event_ms,
            state: s.clone(),
        })
    }

    /// Installs a service's checkpointed state (replacing any in memory) and
    /// re-indexes its templates for the fleet guard.
    pub fn restore(&mut self, snapshot: ServiceSnapshot) {
        self.forget(&snapshot.service);
        for (sig_id, sig) in &snapshot.state.sigs {
            self.by_template
                .entry(sig.template_key.clone())
                .or_default()
                .insert((snapshot.service.clone(), sig_id.clone()));
        }
        if let Some(m) = snapshot.max_event_ms {
            self.max_event_ms = Some(self.max_event_ms.map_or(m, |x| x.max(m)));
        }
        self.services.insert(snapshot.service, snapshot.state);
    }

    /// Drops a service's state (its partition moved to another instance).
    pub fn forget(&mut self, service: &str) {
        if let Some(old) = self.services.remove(service) {
            for (sig_id, sig) in old.sigs {
                if let Some(set) = self.by_template.get_mut(&sig.template_key) {
                    set.remove(&(service.to_owned(), sig_id));
                }
            }
        }
        self.touched.remove(service);
    }

    /// The services currently held.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.services.keys().map(String::as_str)
    }

    /// The event-time watermark, if any event was seen.
    pub fn watermark(&self) -> Option<i64> {
        self.max_event_ms
            .map(|m| m - i64::from(self.config.allowed_lateness_s) * 1_000)
    }

    /// Feeds one event; returns the regressions it reveals (in event-time order).
    pub fn on_event(&mut self, event: &AnyEvent) -> Vec<Regression> {
        let mut out = Vec::new();
        let t = match event {
            AnyEvent::SignatureCount(sc) => {
                self.on_signature(sc);
                sc.last_seen_ms
            }
            AnyEvent::Traffic(t) => {
                self.on_traffic(t);
                t.window_start_ms
            }
            AnyEvent::Deploy(d) => {
                self.on_deploy(d);
                d.deployed_at_ms
            }
            AnyEvent::Build(b) => {
                out.extend(self.on_build(b));
                b.finished_at_ms
            }
            _ => return out,
        };
        self.max_event_ms = Some(self.max_event_ms.map_or(t, |m| m.max(t)));
        if let Some(wm) = self.watermark() {
            out.extend(self.advance(wm));
        }
        match event {
            // A count is bucketed at its first occurrence: re-run from there.
            AnyEvent::SignatureCount(sc) => {
                out.extend(self.reevaluate_late(&sc.service, sc.first_seen_ms));
            }
            AnyEvent::Traffic(tr) => out.extend(self.reevaluate_late(&tr.service, t)),
            _ => {}
        }
        out
    }

    /// Topics are read in no guaranteed relative order, so counts can arrive
    /// after the watermark already passed their minute (e.g. all traffic read
    /// before the signature counts). Such late data re-runs the latest
    /// evaluation of the open deploys it belongs to, so it is counted where it
    /// belongs instead of waiting for the watermark to move again, which on a
    /// quiet stream may never happen.
    fn reevaluate_late(&mut self, service: &str, t_ms: i64) -> Vec<Regression> {
        if !self.config.sequential {
            return Vec::new();
        }
        let Some(svc) = self.services.get(service) else {
            return Vec::new();
        };
        // Every boundary already evaluated after the event's minute is re-run,
        // oldest first, so the detection time is the one an on-time arrival
        // would have given (deterministic for a given input order).
        let due: Vec<(usize, i64, i64)> = svc
            .deploys
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.done)
            .filter_map(|(i, d)| {
                let last = d.next_eval_ms - MINUTE_MS;
                let first = (t_ms.div_euclid(MINUTE_MS) + 1) * MINUTE_MS;
                let first =
                    first.max((d.deploy.deployed_at_ms.div_euclid(MINUTE_MS) + 1) * MINUTE_MS);
                (last > d.deploy.deployed_at_ms && first <= last).then_some((i, first, last))
            })
            .collect();
        let mut out = Vec::new();
        for (idx, first, last) in due {
            let d = &mut self.services.get_mut(service).expect("exists").deploys[idx];
            if t_ms < d.deploy.deployed_at_ms {
                // Late baseline data: the cached baseline is stale.
                d.baseline.clear();
                d.per_request = None;
            }
            let mut at = first;
            while at <= last {
                out.extend(self.evaluate(service, idx, at));
                at += MINUTE_MS;
            }
        }
        out
    }

    /// End of input (backtests): closes every open window as if the watermark
    /// had passed it.
    pub fn flush(&mut self) -> Vec<Regression> {
        self.advance(i64::MAX / 2)
    }

    fn is_too_old(&mut self, t_ms: i64) -> bool {
        let horizon = i64::from(self.config.baseline_days) * DAY_MS
            + i64::from(self.config.window_minutes) * MINUTE_MS
            + HOUR_MS;
        match self.watermark() {
            Some(wm) if t_ms < wm - horizon => {
                self.stats.too_old += 1;
                true
            }
            Some(wm) if t_ms < wm => {
                self.stats.late += 1;
                false
            }
            _ => false,
        }
    }

    fn on_signature(&mut self, sc: &SignatureCount) {
        self.touch(&sc.service);
        if self.is_too_old(sc.first_seen_ms) {
            tracing::warn!(service = %sc.service, signature = %sc.signature, ts = sc.first_seen_ms,
                "signature count older than the baseline horizon; not counted");
            return;
        }
        // Counts arrive by the hundred thousand in a backtest: keys are cloned
        // only when they are new.
        let svc = service_state(&mut self.services, &sc.service);
        svc.first_seen_ms = Some(
            svc.first_seen_ms
                .map_or(sc.first_seen_ms, |f| f.min(sc.first_seen_ms)),
        );
        let exception_type = sc.exception_type.as_deref().unwrap_or_default();
        let template_key = || format!("{exception_type}\u{0}{}", sc.template);
        let (sig, new_key) = match svc.sigs.get_mut(&sc.signature) {
            // The pair is in the index under the signature's own key for as
            // long as the signature lives; another template of it is added.
            Some(sig) => {
                let same = is_template_key(&sig.template_key, exception_type, &sc.template);
                (sig, (!same).then(template_key))
            }
            None => {
                let key = template_key();
                let sig = svc
                    .sigs
                    .entry(sc.signature.clone())
                    .or_insert_with(|| SigState {
                        sample: sc.clone(),
                        template_key: key.clone(),
                        last_seen_ms: sc.last_seen_ms,
                        by_revision: BTreeMap::new(),
                        regressed: BTreeSet::new(),
                    });
                (sig, Some(key))
            }
        };
        sig.last_seen_ms = sig.last_seen_ms.max(sc.last_seen_ms);
        match sig.by_revision.get_mut(&sc.revision) {
            Some(series) => series.add(sc.first_seen_ms, sc.count as f64),
            None => sig
                .by_revision
                .entry(sc.revision.clone())
                .or_default()
                .add(sc.first_seen_ms, sc.count as f64),
        }
        if let Some(key) = new_key {
            self.by_template
                .entry(key)
                .or_default()
                .insert((sc.service.clone(), sc.signature.clone()));
        }
        let cap = self.config.max_signatures_per_service.max(1);
        if svc.sigs.len() > cap {
            // Evict the least recently seen signature that no open deploy needs.
            if let Some(victim) = svc
                .sigs
                .iter()
                .filter(|(k, _)| **k != sc.signature)
                .min_by_key(|(k, s)| (s.last_seen_ms, (*k).clone()))
                .map(|(k, _)| k.clone())
            {
                if let Some(s) = svc.sigs.remove(&victim) {
                    if let Some(set) = self.by_template.get_mut(&s.template_key) {
                        set.remove(&(sc.service.clone(), victim));
                    }
                }
                self.stats.evicted_signatures += 1;
            }
        }
    }

    fn on_traffic(&mut self, t: &Traffic) {
        self.touch(&t.service);
        if self.is_too_old(t.window_start_ms) {
            tracing::warn!(service = %t.service, ts = t.window_start_ms,
                "traffic older than the baseline horizon; not counted");
            return;
        }
        let svc = service_state(&mut self.services, &t.service);
        svc.first_seen_ms = Some(
            svc.first_seen_ms
                .map_or(t.window_start_ms, |f| f.min(t.window_start_ms)),
        );
        let series = match svc.traffic.get_mut(&t.revision) {
            Some(series) => series,
            None => svc.traffic.entry(t.revision.clone()).or_default(),
        };
        series.add_spread(
            t.window_start_ms,
            i64::from(t.window_s) * 1_000,
            t.requests as f64,
        );
    }

    /// Marks `service` changed (see [`Detector::take_touched`]).
    fn touch(&mut self, service: &str) {
        if !self.touched.contains(service) {
            self.touched.insert(service.to_owned());
        }
    }

    fn on_deploy(&mut self, d: &Deploy) {
        self.touch(&d.service);
        let svc = self.services.entry(d.service.clone()).or_default();
        if svc
            .deploys
            .iter()
            .any(|s| s.deploy.revision == d.revision && s.deploy.deployed_at_ms == d.deployed_at_ms)
        {
            return; // duplicate input
        }
        let first_boundary = (d.deployed_at_ms.div_euclid(MINUTE_MS) + 1) * MINUTE_MS;
        svc.deploys.push(DeployState {
            deploy: d.clone(),
            next_eval_ms: first_boundary,
            baseline: BTreeMap::new(),
            per_request: None,
            done: false,
        });
    }

    fn on_build(&mut self, b: &Build) -> Option<Regression> {
        if b.status != BuildStatus::Failed {
            return None;
        }
        let signature = "build_failure".to_owned();
        let id = stable_id(&[&b.service, &b.revision, &signature, "build_failure"]);
        self.touch(&b.service);
        if !self
            .services
            .entry(b.service.clone())
            .or_default()
            .emitted
            .insert(id.clone())
        {
            return None;
        }
        let excerpt = b.log_excerpt.clone().unwrap_or_default();
        let first_line = excerpt.lines().next().unwrap_or("build failed").to_owned();
        Some(Regression {
            id,
            service: b.service.clone(),
            revision: b.revision.clone(),
            previous_revision: None,
            kind: RegressionKind::BuildFailure,
            signature,
            template: first_line.clone(),
            exception_type: None,
            detected_at_ms: b.finished_at_ms,
            deployed_at_ms: None,
            window_start_ms: b.finished_at_ms,
            window_end_ms: b.finished_at_ms,
            observed: 1,
            expected: 0.0,
            rate_ratio: f64::INFINITY,
            p_value: 0.0,
            q_value: None,
            requests: None,
            baseline_requests: None,
            rate_basis: RateBasis::PerTime,
            externally_correlated: false,
            correlation_evidence: None,
            sample_message: first_line,
            sample_stack: (!excerpt.is_empty()).then_some(excerpt),
            frames: Vec::new(),
        })
    }

    /// Runs every evaluation due at or before `wm`, in event-time order.
    fn advance(&mut self, wm: i64) -> Vec<Regression> {
        let window = i64::from(self.config.window_minutes) * MINUTE_MS;
        let mut out = Vec::new();
        loop {
            // The earliest due evaluation across services (ties by service name).
            let next = self
                .services
                .iter()
                .flat_map(|(name, s)| {
                    s.deploys
                        .iter()
                        .enumerate()
                        .filter(|(_, d)| !d.done)
                        .map(move |(i, d)| (d.next_eval_ms, name, i))
                })
                .filter(|(t, _, _)| *t <= wm)
                .min()
                // Cloned for the winner only: this runs on every event.
                .map(|(t, name, i)| (t, name.clone(), i));
            let Some((at, service, idx)) = next else {
                break;
            };
            let end = {
                let d = &self.services[&service].deploys[idx];
                d.deploy.deployed_at_ms + window
            };
            let at = at.min(end);
            self.touch(&service);
            let evaluate_now = self.config.sequential || at >= end;
            if evaluate_now {
                out.extend(self.evaluate(&service, idx, at));
            }
            let d = &mut self.services.get_mut(&service).expect("exists").deploys[idx];
            if at >= end {
                d.done = true;
                d.baseline.clear();
            } else {
                d.next_eval_ms = (at + MINUTE_MS).min(end);
            }
        }
        if wm < i64::MAX / 4 && wm.saturating_sub(self.last_compaction_ms) >= HOUR_MS {
            self.compact(wm);
            self.last_compaction_ms = wm;
        }
        out
    }

    /// Folds old minutes into hours, evicts what is older than the baseline
    /// horizon, and forgets finished deploys and empty signatures.
    fn compact(&mut self, wm: i64) {
        self.touched.extend(self.services.keys().cloned());
        let window = i64::from(self.config.window_minutes) * MINUTE_MS;
        let recent_from = wm - window - HOUR_MS;
        let evict_before = wm - i64::from(self.config.baseline_days) * DAY_MS - window - HOUR_MS;
        for (name, svc) in &mut self.services {
            svc.sigs.retain(|sig, s| {
                s.by_revision.retain(|_, series| {
                    series.compact(recent_from, evict_before);
                    !series.is_empty()
                });
                let keep = !s.by_revision.is_empty();
                if !keep {
                    if let Some(set) = self.by_template.get_mut(&s.template_key) {
                        set.remove(&(name.clone(), sig.clone()));
                    }
                }
                keep
            });
            svc.traffic.retain(|_, series| {
                series.compact(recent_from, evict_before);
                !series.is_empty()
            });
            // Finished deploys are kept one baseline long: the fleet guard asks
            // whether a service deployed recently.
            svc.deploys
                .retain(|d| !d.done || d.deploy.deployed_at_ms >= evict_before);
        }
        self.by_template.retain(|_, set| !set.is_empty());
        self.services.retain(|_, s| {
            !s.sigs.is_empty()
                    || !s.traffic.is_empty()
                    || !s.deploys.is_empty()
                    // Emitted ids are kept (regressions are rare) so a replayed
                    // input can never emit the same regression twice.
                    || !s.emitted.is_empty()
        });
    }

    /// One evaluation of deploy `idx` of `service` at event time `at`.
    fn evaluate(&mut self, service: &str, idx: usize, at: i64) -> Vec<Regression> {
        let cfg = self.config.clone();
        let svc = self.services.get_mut(service).expect("exists");
        let first_seen = svc.first_seen_ms.unwrap_or(i64::MAX);
        let d = svc.deploys[idx].deploy.clone();
        let t0 = d.deployed_at_ms;
        let base_from = (t0 - i64::from(cfg.baseline_days) * DAY_MS).max(first_seen.min(t0));
        let rev = d.revision.as_str();
        let prev = d.previous_revision.clone();
        let has_history = t0 - base_from >= i64::from(cfg.window_minutes) * MINUTE_MS;

        // Exposure basis, decided once per deploy: per request when both the
        // baseline and the revision have traffic.
        let hist_requests: f64 = svc
            .traffic
            .iter()
            .filter(|(r, _)| r.as_str() != rev)
            .map(|(_, s)| s.sum(base_from, t0))
            .sum();
        let rev_requests = svc.traffic.get(rev).map_or(0.0, |s| s.sum(t0, at));
        // A deploy between minute boundaries has no complete minute of its own
        // traffic (nor errors) at its first evaluation; deciding the basis then
        // would lock it to per-time rates for good. With a traffic history, the
        // decision waits (up to BASIS_WAIT_MS) for the revision's first requests.
        if svc.deploys[idx].per_request.is_none()
            && cfg.per_request
            && hist_requests > 0.0
            && rev_requests <= 0.0
            && at - t0 < BASIS_WAIT_MS
        {
            return Vec::new();
        }
        let per_request = *svc.deploys[idx]
            .per_request
            .get_or_insert(cfg.per_request && hist_requests > 0.0 && rev_requests > 0.0);
        let prev_requests = prev
            .as_deref()
            .and_then(|p| svc.traffic.get(p))
            .map_or(0.0, |s| s.sum(t0, at));
        let concurrent = per_request && prev_requests > 0.0;
        let exposure = if per_request {
            rev_requests
        } else {
            ((at - t0) as f64 / MINUTE_MS as f64).max(0.0)
        };
        if exposure <= 0.0 {
            return Vec::new();
        }

        let mut candidates = Vec::new();
        let total = svc.sigs.len();
        for (sig_id, sig) in &svc.sigs {
            let x = sig.by_revision.get(rev).map_or(0.0, |s| s.sum(t0, at));
            if x <= 0.0 {
                continue;
            }
            let (hist_count, hist_exposure, shape) = *svc.deploys[idx]
                .baseline
                .entry(sig_id.clone())
                .or_insert_with(|| {
                    historical_baseline(
                        sig,
                        &svc.traffic,
                        rev,
                        base_from,
                        t0,
                        per_request,
                        cfg.dispersion,
                    )
                });
            let (conc_count, conc_exposure) = match (&prev, concurrent) {
                (Some(p), true) => (
                    sig.by_revision.get(p).map_or(0.0, |s| s.sum(t0, at)),
                    prev_requests,
                ),
                _ => (0.0, 0.0),
            };
            let base_count = hist_count + conc_count;
            let base_exposure = hist_exposure + conc_exposure;
            if base_exposure <= 0.0 {
                continue;
            }
            let kind = if base_count == 0.0 {
                if !has_history || x < cfg.new_signature_min_count as f64 {
                    continue;
                }
                RegressionKind::New
            } else {
                RegressionKind::Spike
            };
            let mu = exposure * (base_count + 1.0) / base_exposure;
            let shape = if kind == RegressionKind::New {
                None
            } else {
                shape
            };
            candidates.push(Candidate {
                signature: sig_id.clone(),
                kind,
                x,
                mu,
                p: stats::nb_sf(x, mu, shape),
                e: stats::nb_e_value(x, mu, shape),
                requests: per_request.then_some(exposure),
                baseline_exposure: base_exposure,
                per_request,
            });
        }
        if candidates.is_empty() {
            return Vec::new();
        }
        let q: Vec<f64> = match (cfg.sequential, cfg.fdr) {
            (true, true) => stats::e_bh(&candidates.iter().map(|c| c.e).collect::<Vec<_>>(), total),
            (true, false) => candidates.iter().map(|c| (1.0 / c.e).min(1.0)).collect(),
            (false, true) => stats::bh(&candidates.iter().map(|c| c.p).collect::<Vec<_>>(), total),
            (false, false) => candidates.iter().map(|c| c.p).collect(),
        };

        let mut out = Vec::new();
        for (c, q) in candidates.into_iter().zip(q) {
            let flagged = match c.kind {
                RegressionKind::New => true,
                _ => {
                    q <= cfg.alpha
                        && c.x / c.mu >= cfg.min_rate_ratio
                        && c.x >= cfg.min_count as f64
                }
            };
            if !flagged {
                continue;
            }
            let kind_name = if c.kind == RegressionKind::New {
                "new"
            } else {
                "spike"
            };
            let id = stable_id(&[service, rev, &c.signature, kind_name]);
            if self.services[service].emitted.contains(&id) {
                continue;
            }
            let correlation = if cfg.fleet_guard {
                self.fleet_evidence(service, rev, &c.signature, t0, at)
            } else {
                None
            };
            if cfg.fleet_guard
                && correlation.is_none()
                && self.template_is_shared(service, &c.signature)
            {
                // The same error exists elsewhere: give an outage that started
                // with this deploy a few minutes to show up there too.
                let first = *self
                    .services
                    .get_mut(service)
                    .expect("exists")
                    .held
                    .entry(id.clone())
                    .or_insert(at);
                if at - first < GUARD_HOLD_MS && at < t0 + i64::from(cfg.window_minutes) * MINUTE_MS
                {
                    continue;
                }
            }
            {
                let svc = self.services.get_mut(service).expect("exists");
                svc.emitted.insert(id.clone());
                svc.held.remove(&id);
            }
            if correlation.is_none() {
                if let Some(sig) = self
                    .services
                    .get_mut(service)
                    .and_then(|s| s.sigs.get_mut(&c.signature))
                {
                    sig.regressed.insert(rev.to_owned());
                }
            }
            let sample = &self.services[service].sigs[&c.signature].sample;
            out.push(Regression {
                id,
                service: service.to_owned(),
                revision: rev.to_owned(),
                previous_revision: prev.clone(),
                kind: c.kind,
                signature: c.signature.clone(),
                template: sample.template.clone(),
                exception_type: sample.exception_type.clone(),
                detected_at_ms: at,
                deployed_at_ms: Some(t0),
                window_start_ms: t0,
                window_end_ms: at,
                observed: c.x.round() as i64,
                expected: c.mu,
                rate_ratio: c.x / c.mu,
                p_value: c.p,
                q_value: Some(q),
                requests: c.requests.map(|r| r.round() as i64),
                baseline_requests: c.per_request.then(|| c.baseline_exposure.round() as i64),
                rate_basis: if c.per_request {
                    RateBasis::PerRequest
                } else {
                    RateBasis::PerTime
                },
                externally_correlated: correlation.is_some(),
                correlation_evidence: correlation,
                sample_message: sample.sample_message.clone(),
                sample_stack: sample.sample_stack.clone(),
                frames: sample.frames.clone(),
            });
        }
        out
    }

    fn template_is_shared(&self, service: &str, signature: &str) -> bool {
        let key = &self.services[service].sigs[signature].template_key;
        self.by_template.get(key).is_some_and(|set| set.len() > 1)
            || self.services[service].sigs[signature].by_revision.len() > 1
    }

    /// Evidence that the template of `signature` rose in [t0, at) where this
    /// deploy cannot be the cause: other services that did not deploy in the
    /// last `GUARD_LOOKBACK`, or other revisions of the same service.
    ///
    /// "Rose" is judged against that series' own rate over the lookback before
    /// t0, and must be strong on its own (ratio ≥ 3 and p ≤ 0.001 with a
    /// conservative dispersion of 2): templates such as "connection reset" are
    /// shared by many services, and ordinary noise in one of them must not
    /// excuse a real regression in another.
    fn fleet_evidence(
        &self,
        service: &str,
        rev: &str,
        signature: &str,
        t0: i64,
        at: i64,
    ) -> Option<String> {
        const GUARD_LOOKBACK: i64 = 6 * HOUR_MS;
        let key = &self.services[service].sigs[signature].template_key;
        let mut evidence = Vec::new();
        let mut strong = false;
        for (other_service, other_sig) in self.by_template.get(key)? {
            let Some(svc) = self.services.get(other_service) else {
                continue;
            };
            let Some(sig) = svc.sigs.get(other_sig) else {
                continue;
            };
            let same_service = other_service == service;
            // Its baseline starts after its own latest deploy before t0, so an
            // older culprit's steady errors do not look like a rise; a deploy
            // inside the window makes its rise prove nothing.
            let mut base_from = t0 - GUARD_LOOKBACK;
            if !same_service {
                if svc.deploys.iter().any(|d| {
                    d.deploy.deployed_at_ms >= t0 - 5 * MINUTE_MS && d.deploy.deployed_at_ms < at
                }) {
                    continue;
                }
                if let Some(last) = svc
                    .deploys
                    .iter()
                    .map(|d| d.deploy.deployed_at_ms)
                    .filter(|t| *t < t0)
                    .max()
                {
                    base_from = base_from.max(last);
                }
                if t0 - base_from < 30 * MINUTE_MS {
                    continue;
                }
            }
            for (other_rev, series) in &sig.by_revision {
                if same_service && other_rev == rev {
                    continue;
                }
                let x = series.sum(t0, at);
                if x < self.config.min_count as f64 {
                    continue;
                }
                let base = series.sum(base_from, t0);
                let mu = (at - t0) as f64 * (base + 1.0) / (t0 - base_from) as f64;
                let p = stats::quasi_poisson_sf(x, mu, 2.0);
                if x / mu >= 3.0 && p <= 1e-3 {
                    strong |= x / mu >= 5.0 && p <= 1e-6;
                    evidence.push(format!(
                        "{other_service}@{other_rev}: {x:.0} in the window vs {mu:.1} expected"
                    ));
                }
            }
        }
        // An outage shows in several places at once: one other service's
        // moderate rise can be that service's own noise; two independent ones,
        // one overwhelming one, or the same error rising in this service's
        // other revision are a pattern.
        let same_service_rise = evidence
            .iter()
            .any(|e| e.starts_with(&format!("{service}@")));
        if evidence.len() < 2 && !same_service_rise && !strong {
            return None;
        }
        (!evidence.is_empty()).then(|| {
            format!(
                "the same error rose where this deploy cannot be the cause: {}",
                evidence.join("; ")
            )
        })
    }
}

/// Historical baseline of one signature: (count, exposure, NB shape) over
/// [from, to) from every revision but `rev`.
fn historical_baseline(
    sig: &SigState,
    traffic: &BTreeMap<String, Series>,
    rev: &str,
    from: i64,
    to: i64,
    per_request: bool,
    with_dispersion: bool,
) -> (f64, f64, Option<f64>) {
    // Flagged revisions are left out only where their exposure can be left
    // out too (per request); per time, their share of the clock is unknown.
    let excluded = |r: &str| r == rev || (per_request && sig.regressed.contains(r));
    let count: f64 = sig
        .by_revision
        .iter()
        .filter(|(r, _)| !excluded(r.as_str()))
        .map(|(_, s)| s.sum(from, to))
        .sum();
    let exposure = if per_request {
        traffic
            .iter()
            .filter(|(r, _)| !excluded(r.as_str()))
            .map(|(_, s)| s.sum(from, to))
            .sum()
    } else {
        (to - from) as f64 / MINUTE_MS as f64
    };
    if count <= 0.0 || exposure <= 0.0 || !with_dispersion {
        return (count, exposure, None);
    }
    // Hourly observed vs expected (by hourly requests, or flat per time).
    let mut counts: BTreeMap<i64, f64> = BTreeMap::new();
    for (_, s) in sig
        .by_revision
        .iter()
        .filter(|(r, _)| !excluded(r.as_str()))
    {
        for (h, v) in s.hourly(from, to) {
            *counts.entry(h).or_default() += v;
        }
    }
    let rate = count / exposure;
    let mut hourly_exposure: BTreeMap<i64, f64> = BTreeMap::new();
    if per_request {
        for (_, s) in traffic.iter().filter(|(r, _)| !excluded(r.as_str())) {
            for (h, v) in s.hourly(from, to) {
                *hourly_exposure.entry(h).or_default() += v;
            }
        }
    } else {
        let mut h = from.div_euclid(HOUR_MS) * HOUR_MS;
        while h < to {
            let covered = (h + HOUR_MS).min(to) - h.max(from);
            hourly_exposure.insert(h, covered as f64 / MINUTE_MS as f64);
            h += HOUR_MS;
        }
    }
    let shape = stats::nb_shape(
        hourly_exposure
            .iter()
            .map(|(h, e)| (counts.get(h).copied().unwrap_or(0.0), e * rate)),
    );
    (count, exposure, shape)
}

/// The state of `name`, created empty if new (the name cloned only then).
fn service_state<'a>(
    services: &'a mut BTreeMap<String, ServiceState>,
    name: &str,
) -> &'a mut ServiceState {
    if !services.contains_key(name) {
        services.insert(name.to_owned(), ServiceState::default());
    }
    services.get_mut(name).expect("just inserted")
}

/// Whether `key` is the template key `{exception_type}\0{template}`.
fn is_template_key(key: &str, exception_type: &str, template: &str) -> bool {
    key.len() == exception_type.len() + 1 + template.len()
        && key.starts_with(exception_type)
        && key.as_bytes()[exception_type.len()] == 0
        && key.ends_with(template)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 10 * DAY_MS;

    fn sc(service: &str, rev: &str, sig: &str, count: i64, ts: i64) -> AnyEvent {
        AnyEvent::SignatureCount(SignatureCount {
            service: service.into(),
            revision: rev.into(),
            signature: sig.into(),
            template: format!("template {sig}"),
            exception_type: None,
            level: "error".into(),
            count,
            first_seen_ms: ts,
            last_seen_ms: ts,
            sample_message: "boom".into(),
            sample_stack: None,
            frames: vec![],
            trace_id: None,
        })
    }

    fn traffic(service: &str, rev: &str, requests: i64, ts: i64) -> AnyEvent {
        AnyEvent::Traffic(Traffic {
            service: service.into(),
            revision: rev.into(),
            window_start_ms: ts,
            window_s: 60,
            requests,
        })
    }

    fn deploy(service: &str, rev: &str, prev: &str, ts: i64) -> AnyEvent {
        AnyEvent::Deploy(Deploy {
            service: service.into(),
            revision: rev.into(),
            previous_revision: Some(prev.into()),
            repo: None,
            commit_range: None,
            diff: None,
            diff_url: None,
            deployed_at_ms: ts,
        })
    }

    /// A day of baseline for `service` at revision `a`: 1000 requests and
    /// `rate` errors of signature `old` per minute.
    fn baseline(d: &mut Detector, service: &str, rate: i64) -> Vec<Regression> {
        let mut out = Vec::new();
        for m in 0..(24 * 60) {
            let t = T0 - DAY_MS + m * MINUTE_MS;
            out.extend(d.on_event(&traffic(service, "a", 1000, t)));
            if rate > 0 {
                out.extend(d.on_event(&sc(service, "a", "old", rate, t + 1)));
            }
        }
        out
    }

    /// Minutes after the deploy at revision `b`: traffic, `old` at `old_rate`,
    /// `new` at `new_rate` per minute.
    fn after(
        d: &mut Detector,
        service: &str,
        minutes: i64,
        old_rate: i64,
        new_rate: i64,
    ) -> Vec<Regression> {
        let mut out = Vec::new();
        for m in 0..minutes {
            let t = T0 + m * MINUTE_MS;
            out.extend(d.on_event(&traffic(service, "b", 1000, t)));
            if old_rate > 0 {
                out.extend(d.on_event(&sc(service, "b", "old", old_rate, t + 1)));
            }
            if new_rate > 0 {
                out.extend(d.on_event(&sc(service, "b", "new", new_rate, t + 2)));
            }
        }
        out
    }

    fn detector() -> Detector {
        Detector::new(DetectorConfig::default())
    }

    #[test]
    fn new_signature_is_flagged_within_minutes_of_the_deploy() {
        let mut d = detector();
        assert!(baseline(&mut d, "a", 2).is_empty());
        d.on_event(&deploy("a", "b", "a", T0));
        let mut out = after(&mut d, "a", 30, 2, 2);
        out.extend(d.flush());
        assert_eq!(out.len(), 1, "{out:?}");
        let r = &out[0];
        assert_eq!(r.kind, RegressionKind::New);
        assert_eq!(r.signature, "new");
        assert!(
            r.detected_at_ms - T0 <= 5 * MINUTE_MS,
            "latency {}",
            r.detected_at_ms - T0
        );
        assert_eq!(r.rate_basis, RateBasis::PerRequest);
        assert!(r.observed >= 3);
    }

    /// Regression test: a deploy between minute boundaries was locked to
    /// per-time rates at its first evaluation, before any minute of its own
    /// traffic could exist, so per-request rates never applied to it.
    #[test]
    fn a_deploy_between_minute_boundaries_is_judged_per_request() {
        let mut d = detector();
        baseline(&mut d, "a", 2);
        let t0 = T0 + 37_000;
        d.on_event(&deploy("a", "b", "a", t0));
        let mut out = Vec::new();
        for m in 0..10 {
            let t = T0 + m * MINUTE_MS;
            out.extend(d.on_event(&traffic("a", "b", 1000, t)));
            out.extend(d.on_event(&sc("a", "b", "new", 5, t + 40_000)));
        }
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].rate_basis, RateBasis::PerRequest);
        assert!(out[0].requests.is_some());
        assert!(out[0].detected_at_ms - t0 <= 4 * MINUTE_MS);

        // A revision whose traffic is never reported falls back to per-time.
        let mut d = detector();
        baseline(&mut d, "a", 2);
        d.on_event(&deploy("a", "b", "a", t0));
        let mut out = Vec::new();
        for m in 0..12 {
            let t = T0 + m * MINUTE_MS;
            out.extend(d.on_event(&traffic("a", "a", 1000, t)));
            out.extend(d.on_event(&sc("a", "b", "new", 5, t + 40_000)));
        }
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].rate_basis, RateBasis::PerTime);
    }

    #[test]
    fn a_spike_per_request_is_flagged_early_but_a_traffic_surge_is_not() {
        let mut d = detector();
        baseline(&mut d, "a", 2);
        d.on_event(&deploy("a", "b", "a", T0));
        let out = after(&mut d, "a", 20, 10, 0);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].kind, RegressionKind::Spike);
        assert!(out[0].rate_ratio > 3.0);
        assert!(out[0].q_value.unwrap() <= 0.05);
        assert!(out[0].detected_at_ms - T0 <= 5 * MINUTE_MS);

        // Same error rate per request with 5x traffic: no regression.
        let mut d = detector();
        baseline(&mut d, "s", 2);
        d.on_event(&deploy("s", "b", "a", T0));
        let mut out = Vec::new();
        for m in 0..60 {
            let t = T0 + m * MINUTE_MS;
            out.extend(d.on_event(&traffic("s", "b", 5000, t)));
            out.extend(d.on_event(&sc("s", "b", "old", 10, t + 1)));
        }
        out.extend(d.flush());
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn the_simple_recipe_flags_the_traffic_surge_and_waits_an_hour() {
        let mut d = Detector::new(DetectorConfig::simple_recipe());
        baseline(&mut d, "s", 2);
        d.on_event(&deploy("s", "b", "a", T0));
        let mut out = Vec::new();
        for m in 0..70 {
            let t = T0 + m * MINUTE_MS;
            out.extend(d.on_event(&traffic("s", "b", 5000, t)));
            out.extend(d.on_event(&sc("s", "b", "old", 10, t + 1)));
        }
        assert_eq!(
            out.len(),
            1,
            "per-time rates mistake a surge for a regression"
        );
        assert_eq!(out[0].detected_at_ms, T0 + 60 * MINUTE_MS);
    }

    #[test]
    fn unchanged_error_rate_is_not_a_regression() {
        let mut d = detector();
        baseline(&mut d, "a", 3);
        d.on_event(&deploy("a", "b", "a", T0));
        let mut out = after(&mut d, "a", 60, 3, 0);
        out.extend(d.flush());
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn upstream_outage_in_a_service_that_did_not_deploy_marks_it_external() {
        let mut d = detector();
        baseline(&mut d, "a", 1);
        baseline(&mut d, "other", 1);
        baseline(&mut d, "third", 1);
        d.on_event(&deploy("a", "b", "a", T0));
        let mut out = Vec::new();
        for m in 0..20 {
            let t = T0 + m * MINUTE_MS;
            out.extend(d.on_event(&traffic("a", "b", 1000, t)));
            out.extend(d.on_event(&traffic("other", "a", 1000, t)));
            out.extend(d.on_event(&traffic("third", "a", 1000, t)));
            // Same template in all three services ("template upstream").
            out.extend(d.on_event(&sc("a", "b", "upstream", 5, t + 1)));
            out.extend(d.on_event(&sc("other", "a", "upstream", 5, t + 1)));
            out.extend(d.on_event(&sc("third", "a", "upstream", 5, t + 1)));
        }
        let r: Vec<_> = out.iter().filter(|r| r.service == "a").collect();
        assert_eq!(r.len(), 1, "{out:?}");
        assert!(r[0].externally_correlated);
        assert!(r[0]
            .correlation_evidence
            .as_deref()
            .unwrap()
            .contains("third@a"));
        assert!(r[0]
            .correlation_evidence
            .as_deref()
            .unwrap()
            .contains("other@a"));
    }

    #[test]
    fn one_other_service_with_a_moderate_rise_of_the_same_error_is_not_an_outage() {
        let mut d = detector();
        baseline(&mut d, "a", 1);
        baseline(&mut d, "other", 1);
        // "other" has had the error all along, once a minute.
        for m in 0..(6 * 60) {
            d.on_event(&sc(
                "other",
                "a",
                "upstream",
                1,
                T0 - 6 * HOUR_MS + m * MINUTE_MS + 1,
            ));
        }
        d.on_event(&deploy("a", "b", "a", T0));
        let mut out = Vec::new();
        for m in 0..20 {
            let t = T0 + m * MINUTE_MS;
            out.extend(d.on_event(&traffic("a", "b", 1000, t)));
            out.extend(d.on_event(&traffic("other", "a", 1000, t)));
            out.extend(d.on_event(&sc("a", "b", "upstream", 5, t + 1)));
            // A 4x rise in one other service: noticeable, not overwhelming.
            out.extend(d.on_event(&sc("other", "a", "upstream", 4, t + 1)));
        }
        let r: Vec<_> = out.iter().filter(|r| r.service == "a").collect();
        assert_eq!(r.len(), 1, "{out:?}");
        assert!(
            !r[0].externally_correlated,
            "a single moderate coincidence is attributed: {r:?}"
        );
    }

    #[test]
    fn canary_is_compared_with_the_live_previous_revision() {
        let mut d = detector();
        baseline(&mut d, "a", 2);
        d.on_event(&deploy("a", "b", "a", T0));
        let mut out = Vec::new();
        for m in 0..30 {
            let t = T0 + m * MINUTE_MS;
            out.extend(d.on_event(&traffic("a", "a", 900, t)));
            out.extend(d.on_event(&traffic("a", "b", 100, t)));
            out.extend(d.on_event(&sc("a", "a", "old", 2, t + 1)));
            out.extend(d.on_event(&sc("a", "b", "old", 2, t + 1)));
        }
        // b's per-request rate is 10x a's (2 per 100 vs 2 per 900 + history).
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].revision, "b");
        assert_eq!(out[0].kind, RegressionKind::Spike);
    }

    #[test]
    fn counts_read_after_the_watermark_passed_still_flag_the_deploy() {
        // All traffic (and so the watermark) arrives before the errors, as when
        // a consumer drains the traffic topic first; no event follows.
        let mut d = detector();
        baseline(&mut d, "a", 1);
        d.on_event(&deploy("a", "b", "a", T0));
        let mut out = Vec::new();
        for m in 0..12 {
            out.extend(d.on_event(&traffic("a", "b", 1000, T0 + m * MINUTE_MS)));
        }
        assert!(out.is_empty());
        let out = d.on_event(&sc("a", "b", "new", 6, T0 + MINUTE_MS + 11_000));
        assert_eq!(out.len(), 1, "late counts re-run the latest evaluation");
        assert_eq!(out[0].kind, RegressionKind::New);
        assert_eq!(out[0].detected_at_ms, T0 + 2 * MINUTE_MS, "as if on time");
    }

    #[test]
    fn baseline_read_after_the_deploy_window_still_counts() {
        // The deployed revision's data first, the history last.
        let mut d = detector();
        d.on_event(&deploy("a", "b", "a", T0));
        let mut out = after(&mut d, "a", 12, 0, 2);
        assert!(out.is_empty(), "no history yet: nothing to compare with");
        out.extend(baseline(&mut d, "a", 1));
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].detected_at_ms - T0 <= 3 * MINUTE_MS);
    }

    #[test]
    fn late_events_count_and_ancient_ones_are_reported() {
        let mut d = detector();
        baseline(&mut d, "a", 1);
        d.on_event(&sc("a", "a", "old", 1, T0 - 30 * MINUTE_MS));
        assert_eq!(d.stats().late, 1);
        d.on_event(&sc("a", "a", "old", 1, T0 - 30 * DAY_MS));
        assert_eq!(d.stats().too_old, 1);
    }

    #[test]
    fn a_restored_snapshot_continues_exactly_like_the_uninterrupted_run() {
        // Uninterrupted.
        let mut a = detector();
        baseline(&mut a, "a", 1);
        a.on_event(&deploy("a", "b", "a", T0));
        let mut want = after(&mut a, "a", 3, 1, 0);
        want.extend(after(&mut a, "a", 20, 0, 2));
        // Same input, the state passed through a serialized snapshot midway.
        let mut b = detector();
        baseline(&mut b, "a", 1);
        b.on_event(&deploy("a", "b", "a", T0));
        let mut got = after(&mut b, "a", 3, 1, 0);
        let touched = b.take_touched();
        assert!(touched.contains("a"));
        let json = serde_json::to_string(&b.snapshot("a").unwrap()).unwrap();
        let mut c = detector();
        c.restore(serde_json::from_str(&json).unwrap());
        got.extend(after(&mut c, "a", 20, 0, 2));
        assert_eq!(got, want);
        assert_eq!(got.len(), 1);
        // Emitted ids survive: replaying the same minutes emits nothing new.
        let json = serde_json::to_string(&c.snapshot("a").unwrap()).unwrap();
        let mut d = detector();
        d.restore(serde_json::from_str(&json).unwrap());
        assert!(after(&mut d, "a", 20, 0, 2).is_empty());
    }

    #[test]
    fn failed_build_is_a_regression_at_once_and_only_once() {
        let mut d = detector();
        let b = AnyEvent::Build(Build {
            service: "a".into(),
            revision: "r3".into(),
            status: BuildStatus::Failed,
            log_excerpt: Some("error[E0425]: cannot find value `x`\nmore".into()),
            finished_at_ms: 7,
        });
        let out = d.on_event(&b);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, RegressionKind::BuildFailure);
        assert_eq!(out[0].sample_message, "error[E0425]: cannot find value `x`");
        assert!(d.on_event(&b).is_empty());
    }

    #[test]
    fn state_stays_bounded_over_weeks() {
        let mut d = detector();
        for m in 0..(14 * 24 * 60) {
            let t = m * MINUTE_MS;
            d.on_event(&traffic("a", "a", 1000, t));
            d.on_event(&sc("a", "a", "old", 1, t + 1));
        }
        let s = d.stats();
        // Per series (2 here): ≤ 7 days + window + 1 h of hour buckets, and the
        // minutes of the last ~3 hours (compaction runs hourly).
        assert!(s.buckets <= 2 * (7 * 24 + 3 + 4 * 60), "{s:?}");
    }
}
/// The services read traffic, signatures and deploys from separate topics in no
/// guaranteed relative order: every order of those streams must give the same
/// regression at the same event time.
#[cfg(test)]
mod topic_order {
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
            revision: "b".into(),
            previous_revision: Some("a".into()),
            repo: None,
            commit_range: None,
            diff: None,
            diff_url: None,
            deployed_at_ms: t0,
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
}
