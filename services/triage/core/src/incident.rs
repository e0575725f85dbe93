//! Incidents (pure): every regression of one deploy (service + revision),
//! and its build failure, judged together into one verdict stream.
//!
//! Each regression admitted to triage joins its deploy's incident; the
//! verdict it triggers judges the whole incident so far (evidence pooled
//! across its signatures), carries the incident's id, and supersedes the
//! earlier ones (`incident_seq` counts the updates). Bounded: at most
//! [`MAX_INCIDENTS`] incidents (the oldest forgotten first) of at most
//! [`MAX_PER_INCIDENT`] regressions each (later ones still get a verdict, judged
//! with the first ones).

use std::collections::{BTreeMap, VecDeque};

use selfheal_schemas::ids::stable_id;
use selfheal_schemas::{Frame, Regression};

/// Incidents kept.
pub const MAX_INCIDENTS: usize = 4096;
/// Regressions kept per incident.
pub const MAX_PER_INCIDENT: usize = 256;

/// The incident id of a deploy.
pub fn incident_id(service: &str, revision: &str) -> String {
    stable_id(&[service, revision, "incident"])
}

/// The incidents triage knows.
#[derive(Debug, Default)]
pub struct Incidents {
    by_deploy: BTreeMap<(String, String), Incident>,
    order: VecDeque<(String, String)>,
}

/// One deploy's incident.
#[derive(Debug, Default, Clone)]
pub struct Incident {
    /// Its regressions, in the order admitted (one per id, the latest record).
    pub regressions: Vec<Regression>,
    /// Set when the errors persisted after a rollback: the reason.
    pub persisted_after_rollback: Option<String>,
}

impl Incidents {
    /// Adds a regression to its incident; a record with a known id replaces
    /// the earlier one (a re-delivery is the same record, an update supersedes).
    pub fn add(&mut self, r: &Regression) {
        let key = (r.service.clone(), r.revision.clone());
        if !self.by_deploy.contains_key(&key) {
            self.order.push_back(key.clone());
            if self.order.len() > MAX_INCIDENTS {
                if let Some(old) = self.order.pop_front() {
                    self.by_deploy.remove(&old);
                }
            }
        }
        let inc = self.by_deploy.entry(key).or_default();
        if let Some(known) = inc.regressions.iter_mut().find(|x| x.id == r.id) {
            // A re-published regression is its update (the detector's
            // went-away check): the latest record replaces the earlier one.
            *known = r.clone();
        } else if inc.regressions.len() < MAX_PER_INCIDENT {
            inc.regressions.push(r.clone());
        }
    }

    /// The incident of a deploy, if any.
    pub fn get(&self, service: &str, revision: &str) -> Option<&Incident> {
        self.by_deploy
            .get(&(service.to_owned(), revision.to_owned()))
    }

    /// Marks an incident's errors as persisting after a rollback.
    pub fn persisted(&mut self, service: &str, revision: &str, why: String) -> Option<&Incident> {
        let inc = self
            .by_deploy
            .get_mut(&(service.to_owned(), revision.to_owned()))?;
        inc.persisted_after_rollback = Some(why);
        Some(inc)
    }

    /// The regressions judged with `r`: its incident's, plus `r` itself if it
    /// is not among them, and the update number of the verdict `r` triggers
    /// (its position in the incident).
    pub fn with(&self, r: &Regression) -> (Vec<Regression>, i32) {
        let mut list = self
            .get(&r.service, &r.revision)
            .map(|i| i.regressions.clone())
            .unwrap_or_default();
        let seq = match list.iter().position(|x| x.id == r.id) {
            Some(i) => i,
            None => {
                list.push(r.clone());
                list.len() - 1
            }
        };
        (list, i32::try_from(seq).unwrap_or(i32::MAX))
    }
}

/// The frames a regression is linked with: its own, or, when it has no
/// in-app frame (a plain `log.error`, a shipper that cut the trace), those of
/// a sibling in the same incident with the same exception type and template.
pub fn frames_of<'a>(r: &'a Regression, incident: &'a [Regression]) -> &'a [Frame] {
    if r.frames.iter().any(|f| f.in_app) {
        return &r.frames;
    }
    incident
        .iter()
        .find(|s| {
            s.id != r.id
                && s.exception_type == r.exception_type
                && s.template == r.template
                && s.frames.iter().any(|f| f.in_app)
        })
        .map_or(&r.frames, |s| &s.frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regression_published_again_replaces_the_earlier_record() {
        let mut incidents = Incidents::default();
        let first = selfheal_schemas::testing::regression();
        let mut other = first.clone();
        other.id = "another".into();
        incidents.add(&first);
        incidents.add(&other);
        let mut update = first.clone();
        update.externally_correlated = true;
        incidents.add(&update);
        let inc = incidents.get(&first.service, &first.revision).unwrap();
        assert_eq!(inc.regressions.len(), 2);
        assert_eq!(inc.regressions[0].id, first.id);
        assert!(
            inc.regressions[0].externally_correlated,
            "the update replaced it in place"
        );
        assert!(!inc.regressions[1].externally_correlated);
    }
}
