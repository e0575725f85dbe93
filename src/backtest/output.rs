//! The output files (ARCHITECTURE.md, "Backtest output"), one NDJSON row per
//! event.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use selfheal_pipeline::Outcome;
use selfheal_schemas::RegressionKind;
use serde_json::json;

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

fn finite(x: f64) -> serde_json::Value {
    if x.is_finite() {
        json!(x)
    } else {
        serde_json::Value::Null
    }
}

/// Writes the output files: regressions, verdicts, actions, deploys (and
/// `rejected.ndjson` when lines were bad).
pub(crate) fn write_outputs(
    dir: &Path,
    outcome: &Outcome,
    rejected: &[String],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, lines: Vec<String>| -> anyhow::Result<()> {
        let path = dir.join(name);
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        );
        for l in lines {
            writeln!(f, "{l}")?;
        }
        f.flush()?;
        Ok(())
    };
    write(
        "regressions.ndjson",
        outcome
            .regressions
            .iter()
            .map(|r| {
                json!({
                    "id": r.id, "service": r.service, "revision": r.revision, "signature": r.signature,
                    "template": r.template, "kind": RegressionKind::as_str(r.kind),
                    "detected_at": rfc3339(r.detected_at_ms), "detected_at_ms": r.detected_at_ms,
                    "deployed_at_ms": r.deployed_at_ms,
                    "observed": r.observed, "expected": finite(r.expected),
                    "rate_ratio": finite(r.rate_ratio), "p_value": finite(r.p_value),
                    "q_value": r.q_value.map(finite), "rate_basis": format!("{:?}", r.rate_basis),
                    "requests": r.requests, "externally_correlated": r.externally_correlated,
                    "correlation_evidence": r.correlation_evidence,
                    "onset_ms": r.onset_ms, "external_cues": r.external_cues,
                    "hold_remediation_until_ms": r.hold_remediation_until_ms,
                    "sample": r.sample_message.lines().next().unwrap_or_default(),
                    // The frames triage linked (innermost first), as `file:line`.
                    "frames": r.frames.iter().map(|f| match f.line {
                        Some(l) => format!("{}:{l}", f.file),
                        None => f.file.clone(),
                    }).collect::<Vec<_>>(),
                })
                .to_string()
            })
            .collect(),
    )?;
    write(
        "verdicts.ndjson",
        outcome
            .verdicts
            .iter()
            .map(|v| {
                json!({
                    "service": v.service, "revision": v.revision,
                    "decision": serde_json::to_value(v.decision).unwrap_or_default(),
                    "confidence": finite(v.confidence), "signatures": v.signatures,
                    "evidence": v.evidence.iter().map(|e| json!({"file": e.file, "line": e.line, "hunk": e.hunk_header, "frame": e.frame, "strength": e.strength})).collect::<Vec<_>>(),
                    "reasoning": v.reasoning, "blamed_revision": v.blamed_revision,
                    "decided_at_ms": v.decided_at_ms,
                    "localization": v.localization.map(|l| l.as_str()),
                    "incident_id": v.incident_id, "incident_seq": v.incident_seq,
                })
                .to_string()
            })
            .collect(),
    )?;
    write(
        "actions.ndjson",
        outcome
            .actions
            .iter()
            .map(|a| {
                json!({
                    "service": a.service, "revision": a.revision,
                    "action": serde_json::to_value(a.action).unwrap_or_default(),
                    "decided_at": rfc3339(a.decided_at_ms), "decided_at_ms": a.decided_at_ms,
                    "reasons": a.reasons, "rule": a.rule,
                    "status": serde_json::to_value(a.status).unwrap_or_default(),
                    "target_revision": a.target_revision,
                })
                .to_string()
            })
            .collect(),
    )?;
    write(
        "deploys.ndjson",
        outcome
            .deploys
            .iter()
            .map(|d| {
                json!({
                    "service": d.service, "revision": d.revision,
                    "previous_revision": d.previous_revision,
                    "deployed_at": rfc3339(d.deployed_at_ms), "deployed_at_ms": d.deployed_at_ms,
                    "repo": d.repo, "commit_range": d.commit_range, "diff_url": d.diff_url,
                    "diff": d.diff,
                })
                .to_string()
            })
            .collect(),
    )?;
    if rejected.is_empty() {
        // A stale file from an earlier run would name lines this run accepted.
        let _ = std::fs::remove_file(dir.join("rejected.ndjson"));
    } else {
        write("rejected.ndjson", rejected.to_vec())?;
    }
    Ok(())
}

/// Fails before the run if `--out` cannot take the output files: it is a
/// file, or the directory cannot be created or written.
pub(super) fn check_out_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!(
            "--out {}: exists and is not a directory (the backtest writes regressions.ndjson, verdicts.ndjson and actions.ndjson into it)",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--out {}: cannot create the directory", dir.display()))?;
    let probe = dir.join(".selfheal-write-check");
    std::fs::write(&probe, b"")
        .with_context(|| format!("--out {}: cannot write into the directory", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
