//! The fleet guard's view beyond this instance (pure: no IO, no clock).
//!
//! Input topics are partitioned by service, so with several detector instances
//! in one consumer group each instance holds only its partitions' services. An
//! upstream outage that hits services owned by different instances must still
//! be recognized, or every instance blames (and rolls back) its own deploys.
//! So every instance publishes compact summaries of its services' activity to
//! `topics.detector_fleet`, reads every instance's summaries back (all
//! partitions, outside the consumer group), and the guard judges with the union
//! of its own services and the others'.
//!
//! - [`FleetSummary`]: what one instance reports after a batch of inputs: count
//!   deltas per (template hash, service, revision, minute), the deploy times of
//!   its services, and its event-time watermark. That is what the guard's rise
//!   test needs (a rise is judged against the same series' own recent past,
//!   and a service that deployed is no witness), no more: no samples, no
//!   traffic, no statistics.
//! - [`FleetView`]: the union of the summaries read: per-minute count series per
//!   (template, service, revision), deploy times per service, and each other
//!   instance's watermark. Bounded: buckets older than the guard's horizon
//!   (lookback + window + an hour) are evicted, minutes fold into hours like
//!   the local series, and templates per service are capped.
//! - [`Outbox`]: the deltas accumulated since the last summary.
//!
//! Counts are deltas. The exactly-once adapter publishes a batch's summary in
//! the batch's transaction, with its input offsets, so an instance that
//! restarts or takes over a partition re-publishes exactly the deltas of the
//! inputs it re-reads: the sums stay exact across crashes and rebalances.
//!
//! Own echo: an instance reads its own summaries too. The core never uses the
//! view for a service it holds locally (local state is authoritative), so its
//! own services are not counted twice; the echo still matters once a service
//! moves to another instance, whose summaries then continue the same series.
//!
//! Summaries are keyed by instance, so one instance's summaries are read in
//! the order written: when its watermark says "reported up to T", its counts up
//! to T have been read too.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::series::{Series, HOUR_MS, MINUTE_MS};

/// One instance's report after a batch (JSON on `topics.detector_fleet`, like
/// the changelog's records: an internal topic, not part of the Avro contract).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetSummary {
    /// The publishing detector instance (unique per process start).
    pub instance: String,
    /// Its event-time watermark after the batch: every input up to here is
    /// reported. `None`: it reports no service (owns no input partition, or is
    /// shutting down), so nobody waits for it.
    pub watermark_ms: Option<i64>,
    /// Deploys read in the batch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deploys: Vec<FleetDeploy>,
    /// Count deltas read in the batch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counts: Vec<FleetCount>,
    /// The event-time watermark of each service the instance holds whose
    /// watermark moved since its last summary (carried by the summary that
    /// carries `watermark_ms`). Watermarks are per service: a service's
    /// counts are complete up to its own watermark, whatever the others'.
    /// Absent (older instances): the instance's watermark stands for all.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_watermarks: BTreeMap<String, i64>,
}

/// A deploy of a service (a service that deployed is no witness of an outage).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FleetDeploy {
    /// The service.
    pub service: String,
    /// Event time of the deploy.
    pub deployed_at_ms: i64,
}

/// Errors of one template in one service revision, counted in one minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetCount {
    /// [`template_hash`] of exception type + template.
    pub template: String,
    /// The service.
    pub service: String,
    /// The revision that logged the errors.
    pub revision: String,
    /// Start of the minute (event time) the errors were first seen in.
    pub minute_ms: i64,
    /// How many more errors this batch counted there.
    pub count: i64,
}

/// The cross-service identity of an error: a hash of exception type and
/// template (the detector's template key), stable across processes.
pub fn template_hash(template_key: &str) -> String {
    selfheal_schemas::ids::stable_id(&[template_key])
}

/// Deltas accumulated since the last [`Outbox::take`].
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    counts: BTreeMap<(String, String, String, i64), i64>,
    deploys: BTreeSet<FleetDeploy>,
    /// The watermark last published (`None`: nothing published yet).
    published: Option<Option<i64>>,
    /// Per-service watermarks last published.
    published_services: BTreeMap<String, i64>,
}

impl Outbox {
    pub(crate) fn count(
        &mut self,
        template: String,
        service: &str,
        revision: &str,
        t_ms: i64,
        n: i64,
    ) {
        let minute = t_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
        *self
            .counts
            .entry((template, service.to_owned(), revision.to_owned(), minute))
            .or_default() += n;
    }

    pub(crate) fn deploy(&mut self, service: &str, deployed_at_ms: i64) {
        self.deploys.insert(FleetDeploy {
            service: service.to_owned(),
            deployed_at_ms,
        });
    }

    /// The summaries to publish, in order, if there is anything new: deltas,
    /// or a watermark different from the last one published. At most
    /// `max_counts` counts per summary (bounded message size); only the last
    /// one carries the new watermark, so a reader never takes the instance
    /// for caught up before it has read all of its counts.
    pub(crate) fn take(
        &mut self,
        instance: &str,
        watermark_ms: Option<i64>,
        service_watermarks: &BTreeMap<String, i64>,
        max_counts: usize,
    ) -> Vec<FleetSummary> {
        let moved: BTreeMap<String, i64> = if watermark_ms.is_some() {
            service_watermarks
                .iter()
                .filter(|(s, w)| self.published_services.get(*s) != Some(*w))
                .map(|(s, w)| (s.clone(), *w))
                .collect()
        } else {
            BTreeMap::new()
        };
        if self.counts.is_empty()
            && self.deploys.is_empty()
            && self.published == Some(watermark_ms)
            && moved.is_empty()
        {
            return Vec::new();
        }
        let before = self.published.flatten();
        self.published = Some(watermark_ms);
        self.published_services
            .extend(moved.iter().map(|(s, w)| (s.clone(), *w)));
        let mut counts: Vec<FleetCount> = std::mem::take(&mut self.counts)
            .into_iter()
            .map(
                |((template, service, revision, minute_ms), count)| FleetCount {
                    template,
                    service,
                    revision,
                    minute_ms,
                    count,
                },
            )
            .collect();
        let mut out = vec![FleetSummary {
            instance: instance.to_owned(),
            watermark_ms,
            deploys: std::mem::take(&mut self.deploys).into_iter().collect(),
            counts: Vec::new(),
            service_watermarks: BTreeMap::new(),
        }];
        let max_counts = max_counts.max(1);
        while counts.len() > max_counts {
            let rest = counts.split_off(max_counts);
            out.last_mut().expect("one").counts = counts;
            out.last_mut().expect("one").watermark_ms = before;
            counts = rest;
            out.push(FleetSummary {
                instance: instance.to_owned(),
                watermark_ms,
                deploys: Vec::new(),
                counts: Vec::new(),
                service_watermarks: BTreeMap::new(),
            });
        }
        let last = out.last_mut().expect("one");
        last.counts = counts;
        last.service_watermarks = moved;
        out
    }
}

/// One template's counts in one remote service.
#[derive(Debug, Default)]
pub(crate) struct RemoteTemplate {
    /// Latest minute counted (for the per-service cap).
    last_minute_ms: i64,
    /// revision → counts.
    pub(crate) by_revision: BTreeMap<String, Series>,
}

#[derive(Debug, Default)]
struct RemoteService {
    templates: BTreeMap<String, RemoteTemplate>,
    deploys: BTreeSet<i64>,
    /// The instance that reported it last (its owner, as far as known).
    reporter: String,
    /// Its own watermark, as last reported (`None`: not reported per service).
    watermark_ms: Option<i64>,
}

/// The union of the fleet summaries read (see the module docs).
#[derive(Debug)]
pub struct FleetView {
    services: BTreeMap<String, RemoteService>,
    /// template hash → services that counted it.
    by_template: BTreeMap<String, BTreeSet<String>>,
    /// Other instances that report services → their watermark.
    instances: BTreeMap<String, i64>,
    /// The latest event time known (any watermark, local or remote).
    clock: Option<i64>,
    last_compaction_ms: i64,
}

impl Default for FleetView {
    fn default() -> Self {
        Self {
            services: BTreeMap::new(),
            by_template: BTreeMap::new(),
            instances: BTreeMap::new(),
            clock: None,
            last_compaction_ms: i64::MIN,
        }
    }
}

impl FleetView {
    /// Adds a summary. `own`: this instance's echo (its counts are kept, for
    /// services that move away later; its watermark is not another's).
    /// `max_templates` caps templates per service (least recent evicted).
    pub(crate) fn apply(&mut self, s: &FleetSummary, own: bool, max_templates: usize) {
        for c in &s.counts {
            let svc = self.services.entry(c.service.clone()).or_default();
            if svc.reporter != s.instance {
                svc.reporter.clone_from(&s.instance);
            }
            let t = svc.templates.entry(c.template.clone()).or_default();
            let minute = c.minute_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
            t.last_minute_ms = t.last_minute_ms.max(minute);
            t.by_revision
                .entry(c.revision.clone())
                .or_default()
                .add(minute, c.count as f64);
            self.by_template
                .entry(c.template.clone())
                .or_default()
                .insert(c.service.clone());
            if svc.templates.len() > max_templates.max(1) {
                let victim = svc
                    .templates
                    .iter()
                    .filter(|(k, _)| **k != c.template)
                    .min_by_key(|(k, t)| (t.last_minute_ms, (*k).clone()))
                    .map(|(k, _)| k.clone());
                if let Some(v) = victim {
                    svc.templates.remove(&v);
                    unindex(&mut self.by_template, &v, &c.service);
                }
            }
        }
        for d in &s.deploys {
            let svc = self.services.entry(d.service.clone()).or_default();
            svc.deploys.insert(d.deployed_at_ms);
            if svc.reporter != s.instance {
                svc.reporter.clone_from(&s.instance);
            }
        }
        for (service, w) in &s.service_watermarks {
            let svc = self.services.entry(service.clone()).or_default();
            if svc.reporter != s.instance {
                svc.reporter.clone_from(&s.instance);
            }
            svc.watermark_ms = Some(svc.watermark_ms.map_or(*w, |x| x.max(*w)));
        }
        if !own {
            match s.watermark_ms {
                Some(w) => {
                    let e = self.instances.entry(s.instance.clone()).or_insert(w);
                    *e = (*e).max(w);
                }
                None => {
                    self.instances.remove(&s.instance);
                }
            }
        }
        if let Some(w) = s.watermark_ms {
            self.advance_clock(w);
        }
    }

    /// Moves the view's clock (the latest watermark known, local or remote).
    pub(crate) fn advance_clock(&mut self, watermark_ms: i64) {
        self.clock = Some(self.clock.map_or(watermark_ms, |c| c.max(watermark_ms)));
    }

    /// Folds and evicts past the horizon, at most once an hour of event time.
    pub(crate) fn maybe_compact(&mut self, window_ms: i64, horizon_ms: i64) {
        let Some(now) = self.clock else { return };
        if now.saturating_sub(self.last_compaction_ms) < HOUR_MS {
            return;
        }
        self.last_compaction_ms = now;
        let recent_from = now - window_ms - HOUR_MS;
        let evict_before = now - horizon_ms;
        let by_template = &mut self.by_template;
        self.services.retain(|name, svc| {
            svc.templates.retain(|hash, t| {
                t.by_revision.retain(|_, series| {
                    series.compact(recent_from, evict_before);
                    !series.is_empty()
                });
                let keep = !t.by_revision.is_empty();
                if !keep {
                    unindex(by_template, hash, name);
                }
                keep
            });
            svc.deploys.retain(|t| *t >= evict_before);
            !svc.templates.is_empty() || !svc.deploys.is_empty()
        });
        // An instance silent for a whole horizon is gone (crashed and
        // replaced: its successor reports under a new name).
        self.instances.retain(|_, w| *w >= evict_before);
    }

    /// The remote services that counted `template` (by [`template_hash`]).
    pub(crate) fn services_with(&self, template: &str) -> impl Iterator<Item = &str> {
        self.by_template
            .get(template)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }

    /// One remote service's series of `template`, by revision.
    pub(crate) fn series(
        &self,
        service: &str,
        template: &str,
    ) -> Option<&BTreeMap<String, Series>> {
        self.services
            .get(service)?
            .templates
            .get(template)
            .map(|t| &t.by_revision)
    }

    /// A remote service's deploy times.
    pub(crate) fn deploys(&self, service: &str) -> impl Iterator<Item = i64> + '_ {
        self.services
            .get(service)
            .into_iter()
            .flat_map(|s| s.deploys.iter().copied())
    }

    /// How far a remote service's counts are known complete: the watermark
    /// of the instance that reports it, down to its minute (counts are per
    /// minute: a partly reported minute would look like a burst), capped at
    /// `at`. A service whose reporter left (or is this instance, before the
    /// service moved away) gets no more counts from it: `at`.
    pub(crate) fn reported_until(&self, service: &str, at: i64) -> i64 {
        self.services
            .get(service)
            .and_then(|s| {
                let instance = self.instances.get(&s.reporter)?;
                // The service's own watermark when its instance reports
                // one (never beyond the instance's).
                Some(s.watermark_ms.map_or(*instance, |w| w.min(*instance)))
            })
            .map_or(at, |w| (w.div_euclid(MINUTE_MS) * MINUTE_MS).min(at))
    }

    /// Remote services whose own watermark is behind `at` but at most
    /// `wait_ms` behind it: their counts for `at` may still come.
    pub(crate) fn lagging_services(&self, at: i64, wait_ms: i64) -> impl Iterator<Item = &str> {
        self.services
            .iter()
            .filter(move |(_, s)| {
                self.instances.contains_key(&s.reporter)
                    && s.watermark_ms.is_some_and(|w| w < at && at - w <= wait_ms)
            })
            .map(|(n, _)| n.as_str())
    }

    /// Other instances that have not reported up to `at` (an evaluation's
    /// time) yet, but are at most `wait_ms` behind it: they may still report
    /// evidence for it. One further behind is down, stuck or far behind in a
    /// catch-up: not waited for.
    pub(crate) fn lagging(&self, at: i64, wait_ms: i64) -> impl Iterator<Item = (&str, i64)> {
        self.instances
            .iter()
            .filter(move |(_, w)| **w < at && at - **w <= wait_ms)
            .map(|(i, w)| (i.as_str(), *w))
    }

    /// Buckets held across all series (for memory accounting).
    pub fn buckets(&self) -> usize {
        self.services
            .values()
            .flat_map(|s| s.templates.values())
            .flat_map(|t| t.by_revision.values())
            .map(Series::buckets)
            .sum()
    }

    /// Other instances currently reporting, with their watermarks.
    pub fn instances(&self) -> impl Iterator<Item = (&str, i64)> {
        self.instances.iter().map(|(i, w)| (i.as_str(), *w))
    }
}

fn unindex(by_template: &mut BTreeMap<String, BTreeSet<String>>, template: &str, service: &str) {
    if let Some(set) = by_template.get_mut(template) {
        set.remove(service);
        if set.is_empty() {
            by_template.remove(template);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(instance: &str, wm: Option<i64>, counts: &[(&str, &str, i64, i64)]) -> FleetSummary {
        FleetSummary {
            instance: instance.into(),
            watermark_ms: wm,
            deploys: vec![],
            counts: counts
                .iter()
                .map(|(t, s, m, n)| FleetCount {
                    template: (*t).into(),
                    service: (*s).into(),
                    revision: "a".into(),
                    minute_ms: *m,
                    count: *n,
                })
                .collect(),
            service_watermarks: BTreeMap::new(),
        }
    }

    #[test]
    fn the_outbox_sums_deltas_per_minute_and_stays_quiet_without_news() {
        let mut o = Outbox::default();
        o.count("t".into(), "s", "a", 61_000, 2);
        o.count("t".into(), "s", "a", 119_000, 3);
        o.deploy("s", 5);
        let s = o.take("i", Some(100), &BTreeMap::new(), 10).pop().unwrap();
        assert_eq!(s.counts.len(), 1);
        assert_eq!((s.counts[0].minute_ms, s.counts[0].count), (MINUTE_MS, 5));
        assert_eq!(s.deploys.len(), 1);
        assert!(
            o.take("i", Some(100), &BTreeMap::new(), 10).is_empty(),
            "nothing new"
        );
        let stop = o.take("i", None, &BTreeMap::new(), 10);
        assert_eq!(stop.len(), 1);
        assert_eq!(stop[0].watermark_ms, None, "stops reporting");
        // Round trip through the wire format.
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<FleetSummary>(&json).unwrap(), s);
    }

    #[test]
    fn large_summaries_are_split_and_only_the_last_part_moves_the_watermark() {
        let mut o = Outbox::default();
        o.count("t".into(), "s", "a", 0, 1);
        assert_eq!(o.take("i", Some(10), &BTreeMap::new(), 2).len(), 1);
        for m in 0..5 {
            o.count("t".into(), "s", "a", m * MINUTE_MS, 1);
        }
        let parts = o.take("i", Some(20), &BTreeMap::new(), 2);
        let shape: Vec<(usize, Option<i64>)> = parts
            .iter()
            .map(|p| (p.counts.len(), p.watermark_ms))
            .collect();
        assert_eq!(shape, vec![(2, Some(10)), (2, Some(10)), (1, Some(20))]);
    }

    #[test]
    fn instances_are_waited_for_within_the_bound_and_forgotten_when_they_leave() {
        let mut v = FleetView::default();
        v.apply(&summary("me", Some(0), &[]), true, 10);
        v.apply(&summary("b", Some(10 * MINUTE_MS), &[]), false, 10);
        assert_eq!(v.instances().count(), 1, "own watermark is not another's");
        assert_eq!(v.lagging(11 * MINUTE_MS, 3 * MINUTE_MS).count(), 1);
        assert_eq!(
            v.lagging(10 * MINUTE_MS, 3 * MINUTE_MS).count(),
            0,
            "caught up"
        );
        assert_eq!(
            v.lagging(14 * MINUTE_MS, 3 * MINUTE_MS).count(),
            0,
            "down: not waited for"
        );
        let counted = summary("b", Some(10 * MINUTE_MS + 5), &[("t", "s", 0, 1)]);
        v.apply(&counted, false, 10);
        assert_eq!(v.reported_until("s", 12 * MINUTE_MS), 10 * MINUTE_MS);
        assert_eq!(v.reported_until("s", 9 * MINUTE_MS), 9 * MINUTE_MS);
        v.apply(&summary("b", None, &[]), false, 10);
        assert_eq!(v.lagging(11 * MINUTE_MS, 3 * MINUTE_MS).count(), 0, "left");
        assert_eq!(v.reported_until("s", 12 * MINUTE_MS), 12 * MINUTE_MS);
    }

    #[test]
    fn the_view_is_bounded_by_the_horizon_and_the_template_cap() {
        let mut v = FleetView::default();
        let horizon = 8 * HOUR_MS;
        for m in 0..(24 * 60) {
            let t = m * MINUTE_MS;
            v.apply(
                &summary(
                    "b",
                    Some(t),
                    &[("t1", "s", t, 1), (&format!("x{}", m % 50), "s", t, 1)],
                ),
                false,
                20,
            );
            v.maybe_compact(HOUR_MS, horizon);
        }
        // Per series: ≤ horizon hours + the last ~3 hours of minutes.
        assert!(v.buckets() <= 20 * (8 + 3 * 60), "{}", v.buckets());
        assert!(v.services["s"].templates.len() <= 20);
        assert!(v.services_with("t1").any(|s| s == "s"));
        let t1 = &v.series("s", "t1").unwrap()["a"];
        assert_eq!(t1.sum(0, 15 * HOUR_MS), 0.0, "evicted");
        assert!(t1.sum(20 * HOUR_MS, 24 * HOUR_MS) > 0.0);
    }
}
