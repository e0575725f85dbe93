//! The detector's pure core: events in, regressions out; no IO, no clock.
//!
//! Time is the events' own (event time), and **each service has its own
//! watermark**: the latest event time seen *for that service* minus
//! `allowed_lateness_s`. A deploy's revision is evaluated at each minute
//! boundary its service's watermark passes, from the deploy until
//! `window_minutes` later (or only at the end with `sequential = false`). So
//! one service's fresh, lagging, replayed or far-future events never make
//! another service's data late, and never move another service's
//! evaluations. Late events still count in their buckets (and re-run the
//! evaluations they belong to); events older than their service's baseline
//! horizon are counted too, and reported ([`DetectorStats::beyond_horizon`],
//! a warning with the reason): never silently dropped.
//!
//! # Layout: one evaluation, stage by stage
//!
//! At each evaluation of revision R (deployed at T, previous revision P):
//! 1. [`exposure`]: the rate basis and R's exposure in [T, now); the
//!    baseline of each signature over [T − baseline_days, T) from other
//!    revisions (plus P's concurrent counts when P still serves traffic).
//! 2. [`alias`]: a signature that is only a renamed ingest group takes the
//!    baseline of the group it matches.
//! 3. [`score`]: the test statistic: expected μ, p-value and anytime-valid
//!    e-value under a negative binomial with the baseline's shape.
//! 4. [`fdr`]: q-values across the service's signatures (e-BH).
//! 5. [`flag`]: the flag rule (new signature; or q ≤ α, ratio, count).
//! 6. [`guard`]: is the cause external (witnesses in other services and
//!    revisions, onset timing, alignment, dependency cues)? It judges
//!    another service's counts only up to that service's watermark, and a
//!    flagged evaluation waits (bounded by `fleet_wait_s`) for services whose
//!    watermark has not reached it yet: the decision then depends on the
//!    data, not on the order in which services' data arrived.
//! 7. [`output`]: the Regression event.
//!
//! This file holds the state, the intake of events and the scheduling
//! (watermarks, due evaluations, re-runs for late data, waiting, compaction).

mod alias;
mod exposure;
mod fdr;
mod flag;
mod guard;
mod output;
mod score;
#[cfg(test)]
mod watermarks;

use std::collections::{BTreeMap, BTreeSet};

use selfheal_common::config::DetectorConfig;
use selfheal_schemas::{
    AnyEvent, Build, BuildStatus, Deploy, Regression, RegressionKind, SignatureCount, Traffic,
};

use crate::fleet::{template_hash, FleetSummary, FleetView, Outbox};
use crate::series::{Series, HOUR_MS, MINUTE_MS};

const DAY_MS: i64 = 24 * HOUR_MS;
/// How long a flagged signature whose template also exists in other services
/// is held, waiting for fleet evidence, before it is emitted as attributable.
const GUARD_HOLD_MS: i64 = 3 * MINUTE_MS;
/// Most counts in one fleet summary (a message of roughly 200 KB of JSON).
const FLEET_MAX_COUNTS: usize = 2_000;
/// How far before a deploy the fleet guard looks for a series' own normal rate.
const GUARD_LOOKBACK: i64 = 6 * HOUR_MS;
/// How long after a deploy the rate basis may wait for the revision's first
/// traffic before falling back to per-time rates (its traffic is not reported).
const BASIS_WAIT_MS: i64 = 5 * MINUTE_MS;

/// Counters describing the detector's state and input quality.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetectorStats {
    /// Events that arrived behind their service's watermark but were still
    /// counted.
    pub late: u64,
    /// Events older than their service's watermark minus the baseline
    /// horizon: counted (and soon compacted away), but no open evaluation
    /// can use them. Reported with the reason; never silently dropped.
    pub beyond_horizon: u64,
    /// Evaluations that waited for another service's (or instance's)
    /// watermark before deciding.
    pub waited_evaluations: u64,
    /// Signatures evicted because a service exceeded its signature cap.
    pub evicted_signatures: u64,
    /// Signatures currently tracked.
    pub signatures: usize,
    /// Buckets currently held across all series.
    pub buckets: usize,
    /// Buckets held for other instances' services (the fleet view).
    pub fleet_buckets: usize,
    /// Other detector instances currently reporting to the fleet topic.
    pub fleet_instances: usize,
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
    /// The latest evaluation run (or skipped while blocked).
    #[serde(default)]
    last_eval_ms: Option<i64>,
    /// The earliest evaluation whose flagged candidates wait for other
    /// services' watermarks to reach it (see [`Detector::ready`]); it and
    /// every later one re-run, in order, once they do.
    #[serde(default)]
    blocked_from: Option<i64>,
}

impl DeployState {
    /// The evaluation after the one at `at` (minute boundaries, then the
    /// window's end).
    fn next_after(&self, at: i64, window: i64) -> i64 {
        (at + MINUTE_MS).min(self.deploy.deployed_at_ms + window)
    }
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
    /// The latest event time of this service: its watermark is this minus
    /// the allowed lateness. Per service, so one service's fresh (or
    /// far-future) events never make another's data late or too old.
    #[serde(default)]
    max_event_ms: Option<i64>,
    /// When this service's series were last compacted (its own event time).
    #[serde(default)]
    last_compaction_ms: Option<i64>,
    /// No open deploy of this service has an evaluation due before this (a
    /// lower bound; `None` when unknown), so most events skip the scan.
    #[serde(skip)]
    next_due_ms: Option<i64>,
}

/// The checkpointed state of one service: what a restarted or newly assigned
/// detector instance restores instead of re-reading the baseline days.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ServiceSnapshot {
    /// The service.
    pub service: String,
    /// The latest event time of this service when the snapshot was taken
    /// (older snapshots: of any service).
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
    /// Services changed since the last [`Detector::take_touched`].
    touched: BTreeSet<String>,
    stats: DetectorStats,
    /// Several instances: what this one publishes, and what the others report.
    fleet: Option<Fleet>,
    /// Services with an evaluation waiting for other watermarks.
    blocked: BTreeSet<String>,
}

/// The fleet side of one instance (see [`crate::fleet`]).
#[derive(Debug)]
struct Fleet {
    instance: String,
    outbox: Outbox,
    view: FleetView,
}

/// One candidate signature at one evaluation.
struct Candidate {
    signature: String,
    kind: RegressionKind,
    x: f64,
    mu: f64,
    score: score::Score,
    /// The revision's exposure (requests or minutes).
    exposure: f64,
    requests: Option<f64>,
    baseline_exposure: f64,
    per_request: bool,
}

impl Detector {
    /// A detector with the given settings.
    pub fn new(config: DetectorConfig) -> Self {
        Self {
            config,
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
        if let Some(f) = &self.fleet {
            s.fleet_buckets = f.view.buckets();
            s.fleet_instances = f.view.instances().count();
        }
        s
    }

    /// Joins a fleet of detector instances as `instance` (unique per process
    /// start): from now on the inputs' per-template counts and deploys are
    /// collected for [`Detector::take_fleet_summaries`], and summaries given to
    /// [`Detector::on_fleet`] extend the fleet guard to other instances'
    /// services. Without it (one instance, the backtest) nothing changes.
    pub fn enable_fleet(&mut self, instance: &str) {
        self.fleet = Some(Fleet {
            instance: instance.to_owned(),
            outbox: Outbox::default(),
            view: FleetView::default(),
        });
    }

    /// What to publish to the fleet topic after a batch, in order: the count
    /// deltas and deploys read since the last call, the instance's watermark
    /// (its services' latest) and each service's own (`None` when
    /// `reporting` is false: the instance owns no input partition or is
    /// leaving, and nobody should wait for it). Empty when nothing is new.
    pub fn take_fleet_summaries(&mut self, reporting: bool) -> Vec<FleetSummary> {
        let wm = self.watermark();
        let lateness = self.lateness_ms();
        let per_service: BTreeMap<String, i64> = self
            .services
            .iter()
            .filter_map(|(n, s)| s.max_event_ms.map(|m| (n.clone(), m - lateness)))
            .collect();
        let window = i64::from(self.config.window_minutes) * MINUTE_MS;
        let horizon = fleet_horizon(&self.config);
        let Some(f) = self.fleet.as_mut() else {
            return Vec::new();
        };
        if let Some(w) = wm {
            f.view.advance_clock(w);
        }
        f.view.maybe_compact(window, horizon);
        f.outbox.take(
            &f.instance,
            wm.filter(|_| reporting),
            &per_service,
            FLEET_MAX_COUNTS,
        )
    }

    /// Applies a summary read from the fleet topic (any instance's, this
    /// one's own echo included). Evaluations waiting for other instances are
    /// re-judged: this can release them, with the other instance's evidence
    /// or because it has now reported far enough. Remote data never moves
    /// this instance's watermarks.
    pub fn on_fleet(&mut self, summary: &FleetSummary) -> Vec<Regression> {
        let window = i64::from(self.config.window_minutes) * MINUTE_MS;
        let horizon = fleet_horizon(&self.config);
        let max_templates = self.config.max_signatures_per_service;
        let Some(f) = self.fleet.as_mut() else {
            return Vec::new();
        };
        let own = summary.instance == f.instance;
        f.view.apply(summary, own, max_templates);
        f.view.maybe_compact(window, horizon);
        if own || !self.config.sequential || !self.config.fleet_guard {
            return Vec::new();
        }
        self.unblock()
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
            max_event_ms: s.max_event_ms,
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
        let mut state = snapshot.state;
        // Snapshots from before per-service watermarks carry the global one.
        state.max_event_ms = state.max_event_ms.or(snapshot.max_event_ms);
        state.next_due_ms = None;
        if state.deploys.iter().any(|d| d.blocked_from.is_some()) {
            self.blocked.insert(snapshot.service.clone());
        }
        self.services.insert(snapshot.service, state);
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
        self.blocked.remove(service);
    }

    /// The services currently held.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.services.keys().map(String::as_str)
    }

    /// The latest of the services' watermarks, if any event was seen (what
    /// this instance reports to the fleet; evaluations use each service's
    /// own, [`Detector::service_watermark`]).
    pub fn watermark(&self) -> Option<i64> {
        self.services
            .values()
            .filter_map(|s| s.max_event_ms)
            .max()
            .map(|m| m - self.lateness_ms())
    }

    /// The event-time watermark of `service`, if any of its events was seen.
    pub fn service_watermark(&self, service: &str) -> Option<i64> {
        self.services
            .get(service)?
            .max_event_ms
            .map(|m| m - self.lateness_ms())
    }

    fn lateness_ms(&self) -> i64 {
        i64::from(self.config.allowed_lateness_s) * 1_000
    }

    /// Feeds one event; returns the regressions it reveals (in event-time order).
    pub fn on_event(&mut self, event: &AnyEvent) -> Vec<Regression> {
        let mut out = Vec::new();
        let (service, t) = match event {
            AnyEvent::SignatureCount(sc) => {
                self.on_signature(sc);
                (&sc.service, sc.last_seen_ms)
            }
            AnyEvent::Traffic(t) => {
                self.on_traffic(t);
                (&t.service, t.window_start_ms)
            }
            AnyEvent::Deploy(d) => {
                self.on_deploy(d);
                (&d.service, d.deployed_at_ms)
            }
            AnyEvent::Build(b) => {
                out.extend(self.on_build(b));
                (&b.service, b.finished_at_ms)
            }
            _ => return out,
        };
        let svc = service_state(&mut self.services, service);
        let moved = svc.max_event_ms.is_none_or(|m| t > m);
        if moved {
            svc.max_event_ms = Some(t);
        }
        if let Some(wm) = self.service_watermark(service) {
            out.extend(self.advance(service, wm));
        }
        match event {
            // A count is bucketed at its first occurrence: re-run from there.
            AnyEvent::SignatureCount(sc) => {
                out.extend(self.reevaluate_late(&sc.service, sc.first_seen_ms));
            }
            AnyEvent::Traffic(tr) => out.extend(self.reevaluate_late(&tr.service, t)),
            _ => {}
        }
        // This service's watermark may be what other services' evaluations
        // wait for.
        if moved && !self.blocked.is_empty() {
            // Only a service whose watermark reached the earliest waiting
            // evaluation can release one (cheap: few services wait).
            let earliest = self
                .blocked
                .iter()
                .filter_map(|s| self.services.get(s))
                .flat_map(|s| s.deploys.iter().filter_map(|d| d.blocked_from))
                .min();
            let wm = self.service_watermark(service);
            if earliest.is_none_or(|b| wm.is_some_and(|w| w >= b)) {
                out.extend(self.unblock());
            }
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
        let due: Vec<(usize, i64)> = svc
            .deploys
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.done)
            .filter_map(|(i, d)| {
                let last = d.last_eval_ms?;
                let first = (t_ms.div_euclid(MINUTE_MS) + 1) * MINUTE_MS;
                let first =
                    first.max((d.deploy.deployed_at_ms.div_euclid(MINUTE_MS) + 1) * MINUTE_MS);
                (last > d.deploy.deployed_at_ms && first <= last).then_some((i, first))
            })
            .collect();
        let mut out = Vec::new();
        for (idx, first) in due {
            let d = &mut self.services.get_mut(service).expect("exists").deploys[idx];
            if t_ms < d.deploy.deployed_at_ms {
                // Late baseline data: the cached baseline is stale.
                d.baseline.clear();
                d.per_request = None;
            }
            match d.blocked_from {
                // Already waiting from before `first`: the re-run happens
                // when it is released.
                Some(b) if b <= first => continue,
                Some(_) => d.blocked_from = None,
                None => {}
            }
            out.extend(self.run_from(service, idx, first));
        }
        out
    }

    /// Runs the evaluations of deploy `idx` from `first` through its latest
    /// one, in order, stopping where one has to wait.
    fn run_from(&mut self, service: &str, idx: usize, first: i64) -> Vec<Regression> {
        let window = i64::from(self.config.window_minutes) * MINUTE_MS;
        let mut out = Vec::new();
        let mut at = first;
        loop {
            let d = &self.services[service].deploys[idx];
            let Some(last) = d.last_eval_ms else { break };
            if at > last || d.blocked_from.is_some() {
                break;
            }
            let next = d.next_after(at, window);
            out.extend(self.evaluate(service, idx, at));
            if next == at {
                break;
            }
            at = next;
        }
        out
    }

    /// Re-judges the waiting evaluations whose wait is over.
    fn unblock(&mut self) -> Vec<Regression> {
        let mut out = Vec::new();
        let services: Vec<String> = self.blocked.iter().cloned().collect();
        for service in services {
            let Some(svc) = self.services.get(&service) else {
                self.blocked.remove(&service);
                continue;
            };
            let waiting: Vec<(usize, i64)> = svc
                .deploys
                .iter()
                .enumerate()
                .filter_map(|(i, d)| d.blocked_from.map(|b| (i, b)))
                .collect();
            for (idx, from) in waiting {
                if !self.ready(&service, from) {
                    continue;
                }
                self.touch(&service);
                self.services.get_mut(&service).expect("exists").deploys[idx].blocked_from = None;
                out.extend(self.run_from(&service, idx, from));
            }
            let still = self.services[&service]
                .deploys
                .iter()
                .any(|d| d.blocked_from.is_some());
            if !still {
                self.blocked.remove(&service);
            }
        }
        out
    }

    /// End of input (backtests): closes every open window as if every
    /// service's watermark had passed it, earliest evaluation first.
    pub fn flush(&mut self) -> Vec<Regression> {
        let end = i64::MAX / 2;
        let mut out = Vec::new();
        for svc in self.services.values_mut() {
            svc.max_event_ms = Some(end + self.config.allowed_lateness_s as i64 * 1_000);
            svc.next_due_ms = None;
        }
        loop {
            let next = self
                .services
                .iter()
                .flat_map(|(name, s)| {
                    s.deploys
                        .iter()
                        .filter(|d| !d.done)
                        .map(move |d| (d.next_eval_ms, name))
                })
                .min()
                .map(|(t, n)| (t, n.clone()));
            let Some((at, service)) = next else { break };
            out.extend(self.run_due(&service, at));
        }
        out.extend(self.unblock());
        out
    }

    /// Whether an event of `service` at `t_ms` is behind its watermark
    /// (late) or behind the whole baseline horizon.
    fn is_too_old(&mut self, service: &str, t_ms: i64) -> bool {
        let horizon = i64::from(self.config.baseline_days) * DAY_MS
            + i64::from(self.config.window_minutes) * MINUTE_MS
            + HOUR_MS;
        match self.service_watermark(service) {
            Some(wm) if t_ms < wm - horizon => {
                self.stats.beyond_horizon += 1;
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
        if self.is_too_old(&sc.service, sc.first_seen_ms) {
            tracing::warn!(service = %sc.service, signature = %sc.signature, ts = sc.first_seen_ms,
                count = sc.count,
                reason = "older than its service's watermark minus the baseline horizon",
                "signature count beyond the horizon: counted, but no open evaluation covers it");
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
        if let Some(f) = self.fleet.as_mut() {
            // This event's template key: the new one, else the signature's own.
            let key = new_key.as_deref().unwrap_or(&sig.template_key);
            f.outbox.count(
                template_hash(key),
                &sc.service,
                &sc.revision,
                sc.first_seen_ms,
                sc.count,
            );
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
        if self.is_too_old(&t.service, t.window_start_ms) {
            tracing::warn!(service = %t.service, ts = t.window_start_ms, requests = t.requests,
                reason = "older than its service's watermark minus the baseline horizon",
                "traffic beyond the horizon: counted, but no open evaluation covers it");
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
        let svc = service_state(&mut self.services, &d.service);
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
            last_eval_ms: None,
            blocked_from: None,
        });
        svc.next_due_ms = None;
        if let Some(f) = self.fleet.as_mut() {
            f.outbox.deploy(&d.service, d.deployed_at_ms);
        }
    }

    fn on_build(&mut self, b: &Build) -> Option<Regression> {
        if b.status != BuildStatus::Failed {
            return None;
        }
        let id = output::regression_id(
            &b.service,
            &b.revision,
            "build_failure",
            RegressionKind::BuildFailure,
        );
        self.touch(&b.service);
        let fresh = service_state(&mut self.services, &b.service)
            .emitted
            .insert(id.clone());
        fresh.then(|| output::build_failure(id, b))
    }

    /// Runs the evaluations of `service` due at or before `wm` (its own
    /// watermark), and compacts its series once an hour of its event time.
    fn advance(&mut self, service: &str, wm: i64) -> Vec<Regression> {
        let mut out = Vec::new();
        if self.services[service].next_due_ms.is_none_or(|t| t <= wm) {
            out = self.run_due(service, wm);
            let svc = self.services.get_mut(service).expect("exists");
            svc.next_due_ms = Some(
                svc.deploys
                    .iter()
                    .filter(|d| !d.done)
                    .map(|d| d.next_eval_ms)
                    .min()
                    .unwrap_or(i64::MAX),
            );
        }
        let last = self.services[service].last_compaction_ms;
        if wm < i64::MAX / 4 && last.is_none_or(|l| wm.saturating_sub(l) >= HOUR_MS) {
            self.compact(service, wm);
            self.services
                .get_mut(service)
                .expect("exists")
                .last_compaction_ms = Some(wm);
        }
        out
    }

    /// The evaluations of `service` due at or before `wm`, earliest first.
    fn run_due(&mut self, service: &str, wm: i64) -> Vec<Regression> {
        let window = i64::from(self.config.window_minutes) * MINUTE_MS;
        let mut out = Vec::new();
        loop {
            let next = self.services[service]
                .deploys
                .iter()
                .enumerate()
                .filter(|(_, d)| !d.done && d.next_eval_ms <= wm)
                .map(|(i, d)| (d.next_eval_ms, i))
                .min();
            let Some((at, idx)) = next else {
                break;
            };
            self.touch(service);
            let evaluate_now;
            let at = {
                let d = &mut self.services.get_mut(service).expect("exists").deploys[idx];
                let end = d.deploy.deployed_at_ms + window;
                let at = at.min(end);
                d.last_eval_ms = Some(at);
                evaluate_now = self.config.sequential || at >= end;
                at
            };
            if evaluate_now {
                match self.services[service].deploys[idx].blocked_from {
                    // Waiting: released (and re-run through `at`) once ready.
                    Some(b) => {
                        if self.ready(service, b) {
                            let d =
                                &mut self.services.get_mut(service).expect("exists").deploys[idx];
                            d.blocked_from = None;
                            out.extend(self.run_from(service, idx, b));
                        }
                    }
                    None => out.extend(self.evaluate(service, idx, at)),
                }
            }
            let d = &mut self.services.get_mut(service).expect("exists").deploys[idx];
            if at >= d.deploy.deployed_at_ms + window {
                d.done = true;
                if d.blocked_from.is_none() {
                    d.baseline.clear();
                }
            } else {
                d.next_eval_ms = d.next_after(at, window);
            }
        }
        out
    }

    /// Folds `service`'s old minutes into hours, evicts what is older than
    /// its baseline horizon (by its own watermark `wm`), and forgets finished
    /// deploys and empty signatures.
    fn compact(&mut self, service: &str, wm: i64) {
        self.touch(service);
        let window = i64::from(self.config.window_minutes) * MINUTE_MS;
        let recent_from = wm - window - HOUR_MS;
        let evict_before = wm - i64::from(self.config.baseline_days) * DAY_MS - window - HOUR_MS;
        let Some(svc) = self.services.get_mut(service) else {
            return;
        };
        let by_template = &mut self.by_template;
        svc.sigs.retain(|sig, s| {
            s.by_revision.retain(|_, series| {
                series.compact(recent_from, evict_before);
                !series.is_empty()
            });
            let keep = !s.by_revision.is_empty();
            if !keep {
                if let Some(set) = by_template.get_mut(&s.template_key) {
                    set.remove(&(service.to_owned(), sig.clone()));
                    if set.is_empty() {
                        by_template.remove(&s.template_key);
                    }
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
        svc.deploys.retain(|d| {
            !d.done || d.blocked_from.is_some() || d.deploy.deployed_at_ms >= evict_before
        });
        // A candidate held for the guard is emitted by its window's end at
        // the latest; one flagged before the recent past never will be
        // (it fell back below the thresholds).
        svc.held.retain(|_, first| *first >= recent_from);
        // Emitted ids are kept (regressions are rare) so a replayed input
        // can never emit the same regression twice; the service's
        // watermark is kept with it.
    }

    /// One evaluation of deploy `idx` of `service` at event time `at`: the
    /// stages in order (see the module docs).
    fn evaluate(&mut self, service: &str, idx: usize, at: i64) -> Vec<Regression> {
        let candidates = self.candidates(service, idx, at);
        if candidates.is_empty() {
            return Vec::new();
        }
        let cfg = &self.config;
        let svc = &self.services[service];
        // The hypotheses: the service's signatures seen before `at` (ones
        // first seen later, already read, must not change the answer).
        let tested = svc
            .sigs
            .values()
            .filter(|g| {
                g.by_revision
                    .values()
                    .any(|r| r.first_ms().is_some_and(|f| f < at))
            })
            .count();
        let scores: Vec<score::Score> = candidates.iter().map(|c| c.score).collect();
        let q = fdr::q_values(&scores, tested, cfg.sequential, cfg.fdr);
        let d = &svc.deploys[idx].deploy;
        let flagged: Vec<(Candidate, f64, String)> = candidates
            .into_iter()
            .zip(q)
            .filter(|(c, q)| flag::flagged(cfg, c.kind, c.x, c.mu, *q))
            .map(|(c, q)| {
                let id = output::regression_id(service, &d.revision, &c.signature, c.kind);
                (c, q, id)
            })
            .filter(|(_, _, id)| !svc.emitted.contains(id))
            .collect();
        if flagged.is_empty() {
            return Vec::new();
        }
        if cfg.fleet_guard && cfg.sequential && !self.ready(service, at) {
            // Another service's (or instance's) counts for `at` may still
            // come: decide once they are in (see `guard::ready`).
            self.services.get_mut(service).expect("exists").deploys[idx].blocked_from = Some(at);
            self.blocked.insert(service.to_owned());
            self.stats.waited_evaluations += 1;
            return Vec::new();
        }
        let deploy = self.services[service].deploys[idx].deploy.clone();
        let (t0, rev) = (deploy.deployed_at_ms, deploy.revision.as_str());
        let window = i64::from(self.config.window_minutes) * MINUTE_MS;
        let hold_ms = i64::from(self.config.hold_remediation_s) * 1_000;
        let mut out = Vec::new();
        for (c, q, id) in flagged {
            let assessment = if self.config.fleet_guard {
                self.assess(&guard::Subject {
                    service,
                    revision: rev,
                    signature: &c.signature,
                    t0,
                    at,
                    base_rate: c.mu / c.exposure,
                    per_request: c.per_request,
                })
            } else {
                guard::Assessment::default()
            };
            if self.config.fleet_guard
                && self.config.sequential
                && assessment.external.is_none()
                && self.template_is_shared(service, rev, &c.signature, t0, at)
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
                if at - first < GUARD_HOLD_MS && at < t0 + window {
                    continue;
                }
            }
            let svc = self.services.get_mut(service).expect("exists");
            svc.emitted.insert(id.clone());
            svc.held.remove(&id);
            let sig = svc.sigs.get_mut(&c.signature).expect("candidate exists");
            if assessment.external.is_none() {
                sig.regressed.insert(rev.to_owned());
            }
            let hold = (assessment.ambiguous && hold_ms > 0).then_some(at + hold_ms);
            let ctx = output::Context {
                id,
                service,
                revision: rev,
                previous_revision: deploy.previous_revision.clone(),
                deployed_at_ms: t0,
                at,
                q,
                hold_remediation_until_ms: hold,
            };
            out.push(output::regression(ctx, &c, &sig.sample, assessment));
        }
        out
    }

    /// Stages 1–3: every signature of the service with events on the
    /// deployed revision, with its baseline and score.
    fn candidates(&mut self, service: &str, idx: usize, at: i64) -> Vec<Candidate> {
        let cfg = &self.config;
        let svc = self.services.get_mut(service).expect("exists");
        let first_seen = svc.first_seen_ms.unwrap_or(i64::MAX);
        let (sigs, traffic, deploys) = (&svc.sigs, &svc.traffic, &mut svc.deploys);
        let d = &mut deploys[idx];
        let t0 = d.deploy.deployed_at_ms;
        let base_from = (t0 - i64::from(cfg.baseline_days) * DAY_MS).max(first_seen.min(t0));
        let has_history = t0 - base_from >= i64::from(cfg.window_minutes) * MINUTE_MS;
        let Some(exp) = exposure::plan(cfg, traffic, d, base_from, at) else {
            return Vec::new();
        };
        let rev = d.deploy.revision.as_str();
        let prev = d.deploy.previous_revision.as_deref();
        let baselines = &mut d.baseline;
        let mut baseline_of = |id: &str, sig: &SigState| {
            *baselines.entry(id.to_owned()).or_insert_with(|| {
                exposure::historical_baseline(
                    sig,
                    traffic,
                    rev,
                    base_from,
                    t0,
                    exp.per_request,
                    cfg.dispersion,
                )
            })
        };
        let mut out = Vec::new();
        for (sig_id, sig) in sigs {
            let x = sig.by_revision.get(rev).map_or(0.0, |s| s.sum(t0, at));
            if x <= 0.0 {
                continue;
            }
            let mut base = baseline_of(sig_id, sig);
            if base.0 == 0.0 {
                for (alias_id, alias) in sigs {
                    if alias_id == sig_id || !alias::same_group(alias, sig) {
                        continue;
                    }
                    let alias_base = baseline_of(alias_id, alias);
                    if alias_base.0 > 0.0 {
                        base = alias_base;
                        break;
                    }
                }
            }
            let (hist_count, hist_exposure, shape) = base;
            let (conc_count, conc_exposure) = match (prev, exp.concurrent) {
                (Some(p), true) => (
                    sig.by_revision.get(p).map_or(0.0, |s| s.sum(t0, at)),
                    exp.prev_requests,
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
            let mu = score::expected(exp.exposure, base_count, base_exposure);
            let shape = if kind == RegressionKind::New {
                None
            } else {
                shape
            };
            out.push(Candidate {
                signature: sig_id.clone(),
                kind,
                x,
                mu,
                score: score::score(x, mu, shape),
                exposure: exp.exposure,
                requests: exp.per_request.then_some(exp.exposure),
                baseline_exposure: base_exposure,
                per_request: exp.per_request,
            });
        }
        out
    }
}

/// How far back the fleet view keeps other instances' counts: the guard's
/// lookback before a deploy, the deploy's window, and an hour of slack.
fn fleet_horizon(config: &DetectorConfig) -> i64 {
    GUARD_LOOKBACK + i64::from(config.window_minutes) * MINUTE_MS + HOUR_MS
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
pub(super) mod tests {
    use super::*;
    use selfheal_schemas::RateBasis;

    pub(super) const T0: i64 = 10 * DAY_MS;

    pub(super) fn sc(service: &str, rev: &str, sig: &str, count: i64, ts: i64) -> AnyEvent {
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

    pub(super) fn traffic(service: &str, rev: &str, requests: i64, ts: i64) -> AnyEvent {
        AnyEvent::Traffic(Traffic {
            service: service.into(),
            revision: rev.into(),
            window_start_ms: ts,
            window_s: 60,
            requests,
        })
    }

    pub(super) fn deploy(service: &str, rev: &str, prev: &str, ts: i64) -> AnyEvent {
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
    pub(super) fn baseline(d: &mut Detector, service: &str, rate: i64) -> Vec<Regression> {
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
        assert_eq!(d.stats().beyond_horizon, 1);
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

    /// A count of signature `sig` with `template` and in-app `function`.
    fn sc_t(sig: &str, template: &str, function: &str, rev: &str, count: i64, ts: i64) -> AnyEvent {
        let AnyEvent::SignatureCount(mut c) = sc("a", rev, sig, count, ts) else {
            unreachable!()
        };
        c.template = template.into();
        c.frames = vec![selfheal_schemas::Frame {
            file: "app/auth.py".into(),
            line: Some(10),
            function: function.into(),
            in_app: true,
        }];
        AnyEvent::SignatureCount(c)
    }

    #[test]
    fn a_group_renamed_by_ingest_is_not_a_new_signature() {
        // Before the deploy ingest called the group `g1` ("Invalid user <*>
        // from <*>"); after a restart it founded it again from "carol" as
        // `g2`, at the same rate. Not new. A same-looking message from
        // another function, or another message, is new.
        let mut d = detector();
        for m in 0..(24 * 60) {
            let t = T0 - DAY_MS + m * MINUTE_MS;
            d.on_event(&traffic("a", "a", 1000, t));
            d.on_event(&sc_t(
                "g1",
                "Invalid user <*> from <*>",
                "login",
                "a",
                4,
                t + 1,
            ));
        }
        d.on_event(&deploy("a", "b", "a", T0));
        let mut out = Vec::new();
        for m in 0..30 {
            let t = T0 + m * MINUTE_MS;
            out.extend(d.on_event(&traffic("a", "b", 1000, t)));
            let renamed = sc_t("g2", "Invalid user carol from <*>", "login", "b", 4, t + 1);
            out.extend(d.on_event(&renamed));
            let elsewhere = sc_t("g3", "Invalid user carol from <*>", "signup", "b", 4, t + 1);
            out.extend(d.on_event(&elsewhere));
            out.extend(d.on_event(&sc_t(
                "g4",
                "Invalid token from <*>",
                "login",
                "b",
                4,
                t + 1,
            )));
        }
        let flagged: BTreeSet<&str> = out.iter().map(|r| r.signature.as_str()).collect();
        assert_eq!(flagged, BTreeSet::from(["g3", "g4"]), "{out:?}");
    }

    #[test]
    fn held_candidates_that_can_no_longer_be_emitted_are_forgotten() {
        let mut d = detector();
        baseline(&mut d, "a", 1);
        let svc = d.services.get_mut("a").unwrap();
        // Flagged and held for the guard a day ago, then back below the
        // thresholds: its window is long closed. And one held just now.
        svc.held.insert("stale".into(), T0 - DAY_MS);
        svc.held.insert("recent".into(), T0);
        for m in 0..90 {
            d.on_event(&traffic("a", "a", 1000, T0 + m * MINUTE_MS));
        }
        let held = &d.services["a"].held;
        assert!(!held.contains_key("stale"), "{held:?}");
        assert!(held.contains_key("recent"), "{held:?}");
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

/// Several detector instances, each owning part of the services, exchanging
/// fleet summaries (what the fleet topic carries between them).
#[cfg(test)]
mod fleet_instances {
    use super::tests::{baseline, deploy, sc, traffic, T0};
    use super::*;

    /// Instances fed their own services' events minute by minute; after each
    /// minute every instance's summaries reach every instance (its own echo
    /// included), in the order the fleet topic would deliver them.
    struct Fleet {
        cores: Vec<Detector>,
        owner: BTreeMap<&'static str, usize>,
        /// Regressions, with whether a fleet summary released them.
        out: Vec<(Regression, bool)>,
        /// Instances that stopped publishing (crashed).
        silent: BTreeSet<usize>,
    }

    impl Fleet {
        fn new(owners: &[&[&'static str]]) -> Self {
            let mut cores = Vec::new();
            let mut owner = BTreeMap::new();
            for (i, services) in owners.iter().enumerate() {
                let mut d = Detector::new(DetectorConfig::default());
                d.enable_fleet(&format!("instance-{i}"));
                cores.push(d);
                for s in *services {
                    owner.insert(*s, i);
                }
            }
            Self {
                cores,
                owner,
                out: Vec::new(),
                silent: BTreeSet::new(),
            }
        }

        fn feed(&mut self, service: &str, e: AnyEvent) {
            let i = self.owner[service];
            let out = self.cores[i].on_event(&e);
            self.out.extend(out.into_iter().map(|r| (r, false)));
        }

        fn exchange(&mut self) {
            let mut published = Vec::new();
            for (i, c) in self.cores.iter_mut().enumerate() {
                let s = c.take_fleet_summaries(true);
                if !self.silent.contains(&i) {
                    published.extend(s);
                }
            }
            for s in &published {
                for c in &mut self.cores {
                    let out = c.on_fleet(s);
                    self.out.extend(out.into_iter().map(|r| (r, true)));
                }
            }
        }

        /// A day of baseline for every service, exchanged hour by hour.
        fn history(&mut self, services: &[&str]) {
            for s in services {
                let i = self.owner[s];
                baseline(&mut self.cores[i], s, 1);
                self.exchange();
            }
        }

        fn of(&self, service: &str) -> Vec<&Regression> {
            self.out
                .iter()
                .map(|(r, _)| r)
                .filter(|r| r.service == service)
                .collect()
        }
    }

    /// The upstream error, known before the outage in the quiet services
    /// (3 a minute for 6 hours), so that its rise there is clear but moderate
    /// (4x, 12 a minute): one such witness alone is not an outage, two are.
    fn quiet_history(f: &mut Fleet, quiet: &[&str]) {
        for m in 0..(6 * 60) {
            let t = T0 - 6 * HOUR_MS + m * MINUTE_MS;
            for s in quiet {
                f.feed(s, sc(s, "a", "upstream", 3, t + 1));
            }
            if m % 30 == 0 {
                f.exchange();
            }
        }
        f.exchange();
    }

    /// An upstream outage from T0: 5 a minute in the deployed services (a
    /// new error there), 4x its usual rate in the quiet ones (12 a minute).
    fn outage(f: &mut Fleet, deployed: &[&str], quiet: &[&str], minutes: i64) {
        for s in deployed {
            f.feed(s, deploy(s, "b", "a", T0));
        }
        for m in 0..minutes {
            let t = T0 + m * MINUTE_MS;
            // Instance by instance, as if the second one read a bit later.
            for s in deployed.iter().chain(quiet) {
                let rev = if deployed.contains(s) { "b" } else { "a" };
                f.feed(s, traffic(s, rev, 1000, t));
                let n = if deployed.contains(s) { 5 } else { 12 };
                f.feed(s, sc(s, rev, "upstream", n, t + 1));
            }
            f.exchange();
        }
    }

    const ALL: [&str; 4] = ["a1", "a2", "b1", "b2"];

    #[test]
    fn an_outage_across_two_instances_is_external_on_both_sides() {
        // Control: one instance owning everything sees the outage.
        let mut one = Fleet::new(&[&ALL]);
        one.history(&ALL);
        quiet_history(&mut one, &["a2", "b2"]);
        outage(&mut one, &["a1", "b1"], &["a2", "b2"], 20);
        for s in ["a1", "b1"] {
            let r = one.of(s);
            assert_eq!(r.len(), 1, "{r:?}");
            assert!(r[0].externally_correlated, "{r:?}");
        }

        // Two instances that do not exchange summaries blame both deploys:
        // each sees one moderate witness, which is not an outage.
        let mut deaf = Fleet::new(&[&["a1", "a2"], &["b1", "b2"]]);
        deaf.silent = BTreeSet::from([0, 1]);
        deaf.history(&ALL);
        quiet_history(&mut deaf, &["a2", "b2"]);
        outage(&mut deaf, &["a1", "b1"], &["a2", "b2"], 20);
        for s in ["a1", "b1"] {
            let r = deaf.of(s);
            assert_eq!(r.len(), 1, "{r:?}");
            assert!(!r[0].externally_correlated, "{r:?}");
        }

        // Exchanging summaries, each instance sees the other's witness.
        let mut two = Fleet::new(&[&["a1", "a2"], &["b1", "b2"]]);
        two.history(&ALL);
        quiet_history(&mut two, &["a2", "b2"]);
        outage(&mut two, &["a1", "b1"], &["a2", "b2"], 20);
        for s in ["a1", "b1"] {
            let r = two.of(s);
            assert_eq!(r.len(), 1, "{r:?}");
            assert!(r[0].externally_correlated, "{r:?}");
            let evidence = r[0].correlation_evidence.as_deref().unwrap();
            assert!(
                evidence.contains("a2@a") && evidence.contains("b2@a"),
                "{evidence}"
            );
            // Same decision, same time as the single instance.
            assert_eq!(r[0].detected_at_ms, one.of(s)[0].detected_at_ms);
        }
    }

    #[test]
    fn own_summaries_echoed_back_are_not_counted_twice() {
        // One instance reading its own summaries must decide exactly as
        // without the fleet topic: a single moderate witness stays one.
        let run = |fleet: bool| {
            let mut f = Fleet::new(&[&["a1", "a2"]]);
            if !fleet {
                f.cores[0] = Detector::new(DetectorConfig::default());
            }
            f.history(&["a1", "a2"]);
            quiet_history(&mut f, &["a2"]);
            outage(&mut f, &["a1"], &["a2"], 20);
            f.out.into_iter().map(|(r, _)| r).collect::<Vec<_>>()
        };
        let with_echo = run(true);
        assert_eq!(with_echo, run(false));
        assert_eq!(with_echo.len(), 1);
        assert!(!with_echo[0].externally_correlated);
    }

    #[test]
    fn a_lagging_instance_is_waited_for_and_its_evidence_releases_the_regression() {
        // An outage whose error is new everywhere: when a's instance flags it
        // in a1, b's instance has not reported the minute yet, and nothing
        // tells a's that the error exists elsewhere: only waiting helps.
        let run = |owners: &[&[&'static str]], deaf: bool| {
            let mut f = Fleet::new(owners);
            if deaf {
                f.silent = (0..owners.len()).collect();
            }
            f.history(&["a1", "b1"]);
            f.feed("a1", deploy("a1", "b", "a", T0));
            for m in 0..12 {
                let t = T0 + m * MINUTE_MS;
                // a's instance reads each minute first; b's summaries of it
                // arrive after a's instance evaluated.
                f.feed("a1", traffic("a1", "b", 1000, t));
                f.feed("a1", sc("a1", "b", "upstream", 5, t + 1));
                f.feed("b1", traffic("b1", "a", 1000, t));
                f.feed("b1", sc("b1", "a", "upstream", 5, t + 1));
                f.exchange();
            }
            f
        };
        let two = run(&[&["a1"], &["b1"]], false);
        let r = two.of("a1");
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(r[0].externally_correlated, "{r:?}");
        assert!(
            two.out
                .iter()
                .any(|(r, released)| r.service == "a1" && *released),
            "released by the lagging instance's summary"
        );
        // Same decision, same event time as one instance owning both.
        let one = run(&[&["a1", "b1"]], false);
        assert_eq!(r[0].detected_at_ms, one.of("a1")[0].detected_at_ms);
        // Without the summaries, a1's deploy is blamed.
        let deaf = run(&[&["a1"], &["b1"]], true);
        assert!(!deaf.of("a1")[0].externally_correlated);
    }

    #[test]
    fn a_real_regression_is_not_held_forever_when_the_other_instance_is_silent() {
        let mut two = Fleet::new(&[&["a1"], &["b1"]]);
        two.history(&["a1", "b1"]);
        for d in [T0, T0 + 2 * HOUR_MS] {
            two.feed("a1", deploy("a1", &format!("r{d}"), "a", d));
            for m in 0..30 {
                if d == T0 && m == 2 {
                    // b's instance crashes: it never publishes again.
                    two.silent.insert(1);
                }
                let t = d + m * MINUTE_MS;
                two.feed("a1", traffic("a1", &format!("r{d}"), 1000, t));
                two.feed(
                    "a1",
                    sc("a1", &format!("r{d}"), &format!("bug{d}"), 5, t + 1),
                );
                two.feed("b1", traffic("b1", "a", 1000, t));
                two.exchange();
            }
        }
        let r = two.of("a1");
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r.iter().all(|r| !r.externally_correlated));
        // The first waited for the silent instance, at most fleet_wait_s.
        let wait = i64::from(DetectorConfig::default().fleet_wait_s) * 1_000;
        let first = r[0].detected_at_ms - T0;
        // Its detection time is the evaluation that flagged it (the data
        // decide it); the release waited for the silent instance.
        assert!(
            first >= MINUTE_MS && first <= 2 * MINUTE_MS + wait,
            "{first}"
        );
        // By the second, it is known to be down: not waited for.
        assert!(
            r[1].detected_at_ms - (T0 + 2 * HOUR_MS) <= MINUTE_MS,
            "{:?}",
            r[1]
        );
    }

    #[test]
    fn other_instances_data_is_bounded_in_memory() {
        let mut two = Fleet::new(&[&["a1"], &["b1"]]);
        for m in 0..(3 * 24 * 60) {
            let t = m * MINUTE_MS;
            two.feed("a1", traffic("a1", "a", 1000, t));
            two.feed("b1", sc("b1", "a", &format!("e{}", m % 7), 1, t + 1));
            if m % 10 == 0 {
                two.exchange();
            }
        }
        let s = two.cores[0].stats();
        // 7 series: ≤ the guard's horizon (6 h + 1 h window + 1 h) in hours
        // plus the minutes of the last ~3 hours.
        assert!(s.fleet_buckets <= 7 * (8 + 3 * 60), "{s:?}");
        assert!(s.fleet_buckets > 0);
        assert_eq!(s.fleet_instances, 1);
    }
}
