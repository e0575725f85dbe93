//! Reading the Defects4J folders: `active-bugs.csv`, `patches/<id>.src.patch`
//! and `trigger_tests/<id>` per project.

use std::path::Path;

use anyhow::Context;

use super::truth::JavaFrame;

/// One bug as a deploy.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    /// Project folder name, e.g. `Lang`.
    pub(crate) project: String,
    /// Bug id in the project.
    pub(crate) bug: u32,
    /// Revision serving before the deploy (the fixed one).
    pub(crate) fixed_revision: String,
    /// Revision deployed (the buggy one).
    pub(crate) buggy_revision: String,
    /// The diff the deploy carries: the bug's own patch, or another bug's in a
    /// negative control.
    pub(crate) deployed_patch: String,
    /// For a negative control, the bug whose patch was deployed.
    pub(crate) patch_of: Option<u32>,
    /// The failing tests' traces: exception line, then the `at` lines.
    pub(crate) traces: Vec<String>,
}

impl Case {
    /// `Project-id` (with `+patch-of-N` for a negative control).
    pub(crate) fn id(&self) -> String {
        match self.patch_of {
            Some(other) => format!("{}-{}+patch-of-{other}", self.project, self.bug),
            None => format!("{}-{}", self.project, self.bug),
        }
    }

    /// The service the case is replayed as.
    pub(crate) fn service(&self) -> String {
        format!("{}-{}", self.project.to_lowercase(), self.bug)
    }

    /// The frames of every trace, innermost first per trace.
    pub(crate) fn trace_frames(&self) -> Vec<JavaFrame> {
        self.traces
            .iter()
            .flat_map(|t| t.lines().filter_map(JavaFrame::parse))
            .collect()
    }
}

/// Every case of the projects under `data` (all when `only` is empty), in
/// project then bug order. Bugs without a patch or a trace are skipped.
pub(crate) fn load(data: &Path, only: &[String]) -> anyhow::Result<Vec<Case>> {
    let mut projects: Vec<String> = std::fs::read_dir(data)
        .with_context(|| format!("reading {}", data.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("active-bugs.csv").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|p| only.is_empty() || only.iter().any(|o| o.eq_ignore_ascii_case(p)))
        .collect();
    projects.sort();
    let mut out = Vec::new();
    for project in projects {
        let dir = data.join(&project);
        let csv = std::fs::read_to_string(dir.join("active-bugs.csv"))
            .with_context(|| format!("reading {}/active-bugs.csv", dir.display()))?;
        for (n, line) in csv.lines().enumerate().skip(1) {
            let cols: Vec<&str> = line.split(',').collect();
            let [id, buggy, fixed, ..] = cols.as_slice() else {
                anyhow::bail!(
                    "{}/active-bugs.csv line {}: too few columns",
                    project,
                    n + 1
                );
            };
            let bug: u32 = id.trim().parse().with_context(|| {
                format!("{project}/active-bugs.csv line {}: bug id {id:?}", n + 1)
            })?;
            let patch = dir.join("patches").join(format!("{bug}.src.patch"));
            let trigger = dir.join("trigger_tests").join(bug.to_string());
            let (Ok(patch), Ok(trigger)) = (
                std::fs::read_to_string(&patch),
                std::fs::read_to_string(&trigger),
            ) else {
                continue;
            };
            let traces = split_traces(&trigger);
            if traces.is_empty() {
                continue;
            }
            out.push(Case {
                project: project.clone(),
                bug,
                fixed_revision: short(fixed),
                buggy_revision: short(buggy),
                deployed_patch: patch,
                patch_of: None,
                traces,
            });
        }
    }
    Ok(out)
}

/// Revisions as a deploy would name them (git hashes cut to 12).
fn short(rev: &str) -> String {
    rev.trim().chars().take(12).collect()
}

/// `--- Class::method` headers, each followed by one trace.
fn split_traces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("--- ") {
            out.extend(current.take().filter(|t| !t.trim().is_empty()));
            current = Some(String::new());
        } else if let Some(t) = current.as_mut() {
            if !line.trim().is_empty() {
                t.push_str(line);
                t.push('\n');
            }
        }
    }
    out.extend(current.filter(|t| !t.trim().is_empty()));
    out
}

/// Each case's trace deployed with the patch of the next bug of the same
/// project (the first one's for the last): a deploy that did not cause it.
pub(crate) fn negative_controls(cases: &[Case]) -> Vec<Case> {
    let mut out = Vec::new();
    for case in cases {
        let same: Vec<&Case> = cases.iter().filter(|c| c.project == case.project).collect();
        if same.len() < 2 {
            continue;
        }
        let pos = same.iter().position(|c| c.bug == case.bug).unwrap_or(0);
        let other = same[(pos + 1) % same.len()];
        out.push(Case {
            deployed_patch: other.deployed_patch.clone(),
            patch_of: Some(other.bug),
            ..case.clone()
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_split_on_test_headers() {
        let t = "--- a.B::c\njava.lang.X: m\n\tat a.B.c(B.java:3)\n--- a.B::d\njava.lang.Y\n\tat a.B.d(B.java:9)\n";
        let traces = split_traces(t);
        assert_eq!(traces.len(), 2);
        assert!(traces[1].starts_with("java.lang.Y\n"));
    }
}
