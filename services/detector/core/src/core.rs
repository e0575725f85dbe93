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
//! 8. [`went_away`]: a held regression is looked at again before its hold
//!    ends, and re-published as external (same id) if its rise ended while
//!    the revision still served.
//!
//! This file holds the state, the intake of events and the scheduling
//! (watermarks, due evaluations, re-runs for late data, waiting, compaction).

mod alias;
mod exposure;
mod fdr;
mod flag;
#[cfg(test)]
mod fleet_instances;
mod golden;
mod guard;
mod load;
mod output;
mod predeploy;
mod score;
#[cfg(test)]
pub(super) mod tests;
#[cfg(test)]
mod topic_order;
#[cfg(test)]
mod watermarks;
mod went_away;
mod witness_key;

use std::collections::{BTreeMap, BTreeSet};

use crate::config::DetectorConfig;
use selfheal_schemas::{
    AnyEvent, Build, BuildStatus, Deploy, Regression, RegressionKind, SignatureCount, Traffic,
};

use crate::fleet::{template_hash, FleetSummary, FleetView, Outbox};
use crate::series::{Series, HOUR_MS, MINUTE_MS};

mod snapshot;
pub use snapshot::SnapshotParts;

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
    /// [`witness_key::witness_key`] of `template_key`: the key the fleet
    /// guard matches other services' errors on (`by_template`, the fleet
    /// topic's template hash). Empty in snapshots written before it: filled
    /// in on restore.
    #[serde(default)]
    witness_key: String,
    last_seen_ms: i64,
    /// revision → counts.
    by_revision: BTreeMap<String, Series>,
    /// Revisions flagged (and attributed) for this signature: their counts
    /// and traffic stay out of later baselines, which must not learn a
    /// regression as normal (nor its burstiness as the signature's noise).
    regressed: BTreeSet<String>,
}

/// Whether `sc` should become the signature's sample: it comes from the
/// revision that showed the signature most recently (a spike's regression
/// must carry the new revision's message and stack, not the old one's), or
/// from the same revision and has frames where the sample has none.
/// Decided on event time only, so arrival order does not change it.
fn prefer_sample(sig: &SigState, sc: &SignatureCount) -> bool {
    let first = |rev: &str| sig.by_revision.get(rev).and_then(Series::first_ms);
    if sc.revision == sig.sample.revision {
        return sig.sample.frames.is_empty() && !sc.frames.is_empty();
    }
    match (first(&sc.revision), first(&sig.sample.revision)) {
        (Some(new), Some(old)) => (new, &sc.revision) > (old, &sig.sample.revision),
        (Some(_), None) => true,
        _ => false,
    }
}

#[cfg(test)]
impl SigState {
    /// A signature with the given per-revision counts (unit tests).
    pub(crate) fn for_test(by_revision: &[(&str, &Series)]) -> Self {
        SigState {
            sample: SignatureCount {
                service: "s".into(),
                revision: "a".into(),
                signature: "x".into(),
                template: "t".into(),
                exception_type: None,
                level: "error".into(),
                count: 1,
                first_seen_ms: 0,
                last_seen_ms: 0,
                sample_message: String::new(),
                sample_stack: None,
                frames: vec![],
                trace_id: None,
            },
            template_key: "\u{0}t".into(),
            witness_key: "\u{0}t".into(),
            last_seen_ms: 0,
            by_revision: by_revision
                .iter()
                .map(|(r, s)| ((*r).to_owned(), (*s).clone()))
                .collect(),
            regressed: BTreeSet::new(),
        }
    }
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
    /// How far this service's event time has progressed: its watermark is
    /// this minus the allowed lateness. Per service, so one service's fresh
    /// (or far-future) events never make another's data late or too old.
    /// The latest event time of any of its inputs, but held back by its
    /// traffic (see [`progress`]). Never decreases.
    #[serde(default)]
    max_event_ms: Option<i64>,
    /// The latest event time of any of its inputs.
    #[serde(default)]
    max_input_ms: Option<i64>,
    /// The end of its latest traffic window: the rate every evaluation
    /// divides by is known up to here.
    #[serde(default)]
    traffic_until_ms: Option<i64>,
    /// When this service's series were last compacted (its own event time).
    #[serde(default)]
    last_compaction_ms: Option<i64>,
    /// Latency histograms and server errors (golden signals).
    #[serde(default)]
    golden: golden::GoldenState,
    /// Regression id → its went-away check (held regressions only).
    #[serde(default)]
    follow_ups: BTreeMap<String, went_away::FollowUp>,
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
                    + v.golden.buckets()
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
        let mut state = snapshot.state;
        for (sig_id, sig) in &mut state.sigs {
            if sig.witness_key.is_empty() {
                sig.witness_key = witness_key::witness_key(&sig.template_key);
            }
            self.by_template
                .entry(sig.witness_key.clone())
                .or_default()
                .insert((snapshot.service.clone(), sig_id.clone()));
        }
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
                if let Some(set) = self.by_template.get_mut(&sig.witness_key) {
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
            AnyEvent::LatencyHistogram(h) => {
                self.on_histogram(h);
                (&h.service, h.window_start_ms)
            }
            // A gauge tells when an instance started (instances start cold)
            // and how its memory grows (saturation).
            AnyEvent::InstanceGauge(g) => {
                self.touch(&g.service);
                service_state(&mut self.services, &g.service)
                    .golden
                    .on_gauge(g);
                (&g.service, g.ts_ms)
            }
            _ => return out,
        };
        let wait = i64::from(self.config.traffic_wait_s) * 1_000;
        let svc = service_state(&mut self.services, service);
        svc.max_input_ms = Some(
            svc.max_input_ms
                .or(svc.max_event_ms)
                .map_or(t, |m| m.max(t)),
        );
        if let AnyEvent::Traffic(tr) = event {
            let end = tr.window_start_ms + i64::from(tr.window_s) * 1_000;
            svc.traffic_until_ms = Some(svc.traffic_until_ms.map_or(end, |u| u.max(end)));
        }
        let now = progress(svc.max_input_ms, svc.traffic_until_ms, wait);
        let moved = now.is_some_and(|n| svc.max_event_ms.is_none_or(|m| n > m));
        if moved {
            svc.max_event_ms = now;
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
            AnyEvent::LatencyHistogram(h) => out.extend(self.reevaluate_late(&h.service, t)),
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
        self.forget_held_from(service, idx, first);
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

    /// Forgets when deploy `idx`'s candidates were first held at or after
    /// `first`: those evaluations are about to re-run with more data, and a
    /// hold that began in a run on partial data (a topic read ahead of
    /// another) must not shorten the hold the complete data gives, or the
    /// detection time would depend on arrival order (issue 17).
    fn forget_held_from(&mut self, service: &str, idx: usize, first: i64) {
        let svc = self.services.get_mut(service).expect("exists");
        if !svc.held.values().any(|t| *t >= first) {
            return;
        }
        let rev = &svc.deploys[idx].deploy.revision;
        let ids: BTreeSet<String> = svc
            .sigs
            .keys()
            .flat_map(|sig| {
                [RegressionKind::New, RegressionKind::Spike]
                    .map(|k| output::regression_id(service, rev, sig, k))
            })
            .collect();
        svc.held.retain(|id, t| *t < first || !ids.contains(id));
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
        // The went-away checks still open, in check order across services
        // (each reads only its own window, so the order changes no answer).
        let names: Vec<String> = self.services.keys().cloned().collect();
        for name in names {
            out.extend(self.run_follow_ups(&name, end));
        }
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
                        witness_key: witness_key::witness_key(&key),
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
        if prefer_sample(sig, sc) {
            sig.sample = sc.clone();
        }
        // This event's witness key: the new template's, else the signature's.
        let new_witness = new_key.as_deref().map(witness_key::witness_key);
        if let Some(f) = self.fleet.as_mut() {
            let key = new_witness.as_deref().unwrap_or(&sig.witness_key);
            f.outbox.count(
                template_hash(key),
                &sc.service,
                &sc.revision,
                sc.first_seen_ms,
                sc.count,
            );
        }
        if let Some(key) = new_witness {
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
                    if let Some(set) = self.by_template.get_mut(&s.witness_key) {
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
        svc.golden.on_traffic(t);
    }

    fn on_histogram(&mut self, h: &selfheal_schemas::LatencyHistogram) {
        self.touch(&h.service);
        if self.is_too_old(&h.service, h.window_start_ms) {
            tracing::warn!(service = %h.service, ts = h.window_start_ms, metric = %h.metric,
                reason = "older than its service's watermark minus the baseline horizon",
                "latency histogram beyond the horizon: counted, but no open evaluation covers it");
        }
        let svc = service_state(&mut self.services, &h.service);
        svc.first_seen_ms = Some(
            svc.first_seen_ms
                .map_or(h.window_start_ms, |f| f.min(h.window_start_ms)),
        );
        svc.golden.on_histogram(h);
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
        let mut deploy = d.clone();
        if deploy.previous_revision.is_none() {
            deploy.previous_revision = inferred_previous(svc, d);
        }
        svc.deploys.push(DeployState {
            deploy,
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
        if !self.services[service].follow_ups.is_empty() {
            out.extend(self.run_follow_ups(service, wm));
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
                if let Some(set) = by_template.get_mut(&s.witness_key) {
                    set.remove(&(service.to_owned(), sig.clone()));
                    if set.is_empty() {
                        by_template.remove(&s.witness_key);
                    }
                }
            }
            keep
        });
        svc.traffic.retain(|_, series| {
            series.compact(recent_from, evict_before);
            !series.is_empty()
        });
        svc.golden.compact(recent_from, evict_before);
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
        // Golden signals first: `None` when they wait for other services.
        let Some(mut out) = self.evaluate_golden(service, idx, at) else {
            return Vec::new();
        };
        out.extend(self.evaluate_signatures(service, idx, at));
        out
    }

    /// Stages 1–7 for the service's error signatures.
    fn evaluate_signatures(&mut self, service: &str, idx: usize, at: i64) -> Vec<Regression> {
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
                    x: c.x,
                    exposure: c.exposure,
                    spike: c.kind == RegressionKind::Spike,
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
            let hold = (assessment.ambiguous && hold_ms > 0).then_some(at + hold_ms);
            let check_at = hold.and_then(|until| self.follow_up_at(at, until));
            let svc = self.services.get_mut(service).expect("exists");
            svc.emitted.insert(id.clone());
            svc.held.remove(&id);
            let sig = svc.sigs.get_mut(&c.signature).expect("candidate exists");
            if assessment.external.is_none() {
                sig.regressed.insert(rev.to_owned());
            }
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
            let r = output::regression(ctx, &c, &sig.sample, assessment);
            let svc = self.services.get_mut(service).expect("exists");
            if let Some(check_at_ms) = check_at {
                let follow_up = went_away::FollowUp {
                    regression: r.clone(),
                    check_at_ms,
                    base_rate: c.mu / c.exposure,
                    per_request: c.per_request,
                };
                svc.follow_ups.insert(r.id.clone(), follow_up);
            }
            out.push(r);
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
        let has_history =
            t0 - base_from >= MIN_HISTORY_MS.min(i64::from(cfg.window_minutes) * MINUTE_MS);
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
            let blocks = hour_blocks(sig.by_revision.get(rev), traffic.get(rev), &exp, t0, at)
                .into_iter()
                .map(|(bx, be)| (bx, mu * be / exp.exposure))
                .collect::<Vec<_>>();
            out.push(Candidate {
                signature: sig_id.clone(),
                kind,
                x,
                mu,
                score: score::score(&blocks, shape),
                exposure: exp.exposure,
                requests: exp.per_request.then_some(exp.exposure),
                baseline_exposure: base_exposure,
                per_request: exp.per_request,
            });
        }
        out
    }
}

/// The history a service needs before a deploy for a signature absent from
/// it to count as new (else the window, if shorter): an hour, independent of
/// how long the deploy is watched.
const MIN_HISTORY_MS: i64 = 60 * MINUTE_MS;

/// The revision's (count, exposure) in each clock hour of [t0, at): the
/// blocks of the test ([`score::score`]), on the hours the baseline's shape
/// was estimated on. Their exposures sum to `exp.exposure`.
fn hour_blocks(
    counts: Option<&Series>,
    traffic: Option<&Series>,
    exp: &exposure::Exposure,
    t0: i64,
    at: i64,
) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    // Counts of an hour without exposure (no requests counted in it) join
    // the next hour with some, or the last: never scored against nothing.
    let mut carry = 0.0;
    let mut from = t0;
    while from < at {
        let to = ((from.div_euclid(HOUR_MS) + 1) * HOUR_MS).min(at);
        let x = counts.map_or(0.0, |s| s.sum(from, to));
        let e = if exp.per_request {
            traffic.map_or(0.0, |s| s.sum(from, to))
        } else {
            (to - from) as f64 / MINUTE_MS as f64
        };
        if e > 0.0 {
            out.push((x + carry, e));
            carry = 0.0;
        } else {
            carry += x;
        }
        from = to;
    }
    match out.last_mut() {
        Some(last) => last.0 += carry,
        None => out.push((carry, exp.exposure)),
    }
    out
}

/// How far back the fleet view keeps other instances' counts: the guard's
/// lookback before a deploy, the deploy's window, and an hour of slack.
/// A service's event-time progress: the latest time of any of its inputs,
/// held back to the end of its traffic while the traffic lags by less than
/// `wait`. Every evaluation divides by the traffic up to its boundary, so a
/// service whose traffic arrives behind its error counts (a metrics pipeline
/// slower than the log shipper, or its traffic behind another service's in a
/// shared partition) is not judged on a partial rate, and an evaluation
/// emitted on it (which cannot be taken back) never differs from the one
/// in-order data gives. Traffic that stops (its exporter is down) delays the
/// service's evaluations by `wait`, not forever. Without any traffic, the
/// inputs' latest time (Flink's minimum over inputs, with an idle bound).
fn progress(max_input: Option<i64>, traffic_until: Option<i64>, wait: i64) -> Option<i64> {
    let m = max_input?;
    Some(match traffic_until {
        Some(u) => m.min(u.max(m - wait)),
        None => m,
    })
}

fn fleet_horizon(config: &DetectorConfig) -> i64 {
    GUARD_LOOKBACK + i64::from(config.window_minutes) * MINUTE_MS + HOUR_MS
}

/// The revision a deploy without `previous_revision` replaced (GitHub's
/// `deployment_status` and Argo CD's notifications carry none): the
/// service's latest earlier deploy of another revision, else the revision
/// that served most of its requests in the hour before. Without it the
/// baseline is unchanged (every other revision) but a canary's live
/// previous revision is not compared and the fixer has no rollback target.
fn inferred_previous(svc: &ServiceState, d: &Deploy) -> Option<String> {
    let earlier = svc
        .deploys
        .iter()
        .filter(|s| s.deploy.deployed_at_ms < d.deployed_at_ms && s.deploy.revision != d.revision)
        .max_by_key(|s| s.deploy.deployed_at_ms);
    if let Some(s) = earlier {
        return Some(s.deploy.revision.clone());
    }
    svc.traffic
        .iter()
        .filter(|(rev, _)| **rev != d.revision)
        .map(|(rev, series)| {
            (
                series.sum(d.deployed_at_ms - HOUR_MS, d.deployed_at_ms),
                rev,
            )
        })
        .filter(|(n, _)| *n > 0.0)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, rev)| rev.clone())
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
