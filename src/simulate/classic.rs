//! The `classic` profile: the history every figure before the adversarial
//! profile was measured on, kept byte-for-byte (same random stream, same
//! records, same truth lines) so older tests and benchmarks stay comparable.
//!
//! Many services with daily traffic cycles and over-dispersed baseline errors
//! (per-hour gamma-distributed rate multipliers, i.e. negative-binomial counts);
//! deploys of which some inject a new signature or multiply an existing one
//! (culprits), and confounders: traffic surges right after clean deploys,
//! upstream outages hitting several services at once (one of them right after a
//! clean deploy), rolling deploys where the previous revision keeps serving for
//! a while, and docs-only deploys. Culprit diffs touch the line the new error's
//! frame points at; clean diffs change unrelated code, tests or docs.

use std::fmt::Write as _;
use std::io::Write;

use super::rng::Rng;
use super::{SimArgs, Truth};

const BASE_TEMPLATES: [&str; 8] = [
    "Timeout after {n}ms calling inventory-api (request_id={id})",
    "Connection reset by peer while reading from 10.0.{n}.7:5432",
    "Failed to acquire lock order-{id} after {n} retries",
    "Cache refresh took {n}ms for {n} keys",
    "Session {id} expired for user {n}",
    "Retrying publish of batch {id}: broker not available ({n} attempts)",
    "ValueError: invalid literal for int() with base 10: '{id}'",
    "Slow query: SELECT * FROM orders WHERE id = {n} took {n}ms",
];

struct Sig {
    template: &'static str,
    rate: f64,
    /// Gamma shape of the hourly rate multiplier (smaller: burstier).
    shape: f64,
    multiplier: f64,
    file: String,
    line: u32,
    function: String,
}

struct Service {
    name: String,
    base_rpm: f64,
    phase: f64,
    sigs: Vec<Sig>,
    revision: u32,
    /// (previous revision, until) while a rolling deploy drains it.
    rolling: Option<(u32, i64)>,
    /// Traffic multiplier and until.
    surge: Option<(f64, i64)>,
    /// Injected: (revision, kind, sig index or new-signature rate).
    injected: Option<(u32, Injection)>,
    next_deploy_ms: i64,
}

#[derive(Clone, Copy)]
enum Injection {
    New { rate: f64, line: u32, k: u32 },
    Spike { sig: usize, factor: f64 },
}

/// Writes the history to `out` and the labels to `truth`.
pub(super) fn simulate(
    args: &SimArgs,
    out: &mut impl Write,
    truth: &mut impl Write,
) -> std::io::Result<(usize, usize)> {
    const MIN: i64 = 60_000;
    let mut rng = Rng(args.seed ^ 0x5e1f_4ea1);
    let start_ms: i64 = 1_772_323_200_000; // 2026-03-01T00:00:00Z
    let end_ms = start_ms + (args.days * 86_400_000.0) as i64;
    let mut services: Vec<Service> = (0..args.services)
        .map(|i| {
            let n_sigs = 2 + rng.below(4);
            let mut picked: Vec<usize> = Vec::new();
            while picked.len() < n_sigs {
                let t = rng.below(BASE_TEMPLATES.len());
                if !picked.contains(&t) {
                    picked.push(t);
                }
            }
            let name = format!("svc-{i:03}");
            Service {
                sigs: picked
                    .into_iter()
                    .enumerate()
                    .map(|(j, t)| Sig {
                        template: BASE_TEMPLATES[t],
                        rate: 10f64.powf(rng.range(-4.5, -2.8)),
                        shape: rng.range(2.0, 10.0),
                        multiplier: 1.0,
                        file: format!("src/{name}/db.py"),
                        line: 40 + 30 * j as u32,
                        function: format!("query_{j}"),
                    })
                    .collect(),
                name,
                base_rpm: rng.range(200.0, 3000.0),
                phase: rng.uniform(),
                revision: 1,
                rolling: None,
                surge: None,
                injected: None,
                next_deploy_ms: start_ms
                    + 86_400_000
                    + (rng.uniform() * args.deploy_every_hours * 3_600_000.0) as i64,
            }
        })
        .collect();
    // Upstream outages: (start, affected services).
    let mut outages: Vec<(i64, Vec<usize>)> = Vec::new();
    let n_outages = ((args.days - 1.0) * 1.5).ceil().max(1.0) as usize;
    for _ in 0..n_outages {
        let t = start_ms
            + 86_400_000
            + (rng.uniform() * (end_ms - start_ms - 86_400_000 - 3_600_000) as f64) as i64;
        let t = t - t % MIN;
        let affected: Vec<usize> = (0..services.len())
            .filter(|_| rng.uniform() < 0.4)
            .collect();
        outages.push((t, affected));
    }
    let mut lines = 0usize;
    let mut deploys = 0usize;
    let mut buf = String::new();
    let mut t = start_ms;
    while t < end_ms {
        for (si, svc) in services.iter_mut().enumerate() {
            if (t - start_ms) % 3_600_000 == 0 {
                for s in &mut svc.sigs {
                    s.multiplier = rng.gamma(s.shape);
                }
            }
            if t >= svc.next_deploy_ms {
                deploys += 1;
                deploy(svc, si, t, args, &mut rng, &mut outages, &mut buf, truth)?;
            }
            lines += minute(svc, si, t, start_ms, &mut rng, &outages, &mut buf);
        }
        out.write_all(buf.as_bytes())?;
        buf.clear();
        t += MIN;
    }
    Ok((lines + deploys, deploys))
}

/// A deploy of `svc` at `t`: the next revision, what it carries (a new
/// error, a spike, or a clean change with a confounder), its Deploy record
/// into `buf` and its label into `truth`.
#[allow(clippy::too_many_arguments)]
fn deploy(
    svc: &mut Service,
    si: usize,
    t: i64,
    args: &SimArgs,
    rng: &mut Rng,
    outages: &mut Vec<(i64, Vec<usize>)>,
    buf: &mut String,
    truth: &mut impl Write,
) -> std::io::Result<()> {
    const MIN: i64 = 60_000;
    let prev = svc.revision;
    svc.revision += 1;
    let rev = svc.revision;
    svc.next_deploy_ms = t + (rng.range(0.5, 1.5) * args.deploy_every_hours * 3_600_000.0) as i64;
    let roll = rng.uniform();
    let mut label = "clean";
    let mut confounder = None;
    let (mut culprit_file, mut culprit_line) = (None, None);
    svc.injected = None;
    let diff;
    if roll < 0.2 {
        label = "culprit_new";
        let line = 100 + rng.below(200) as u32;
        let k = rev;
        // 1 to 10 errors a minute at the service's mean traffic.
        let rate = rng.range(1.0, 10.0) / svc.base_rpm;
        svc.injected = Some((rev, Injection::New { rate, line, k }));
        culprit_file = Some(format!("src/{}/handlers.py", svc.name));
        culprit_line = Some(line);
        diff = hunk(
            &format!("src/{}/handlers.py", svc.name),
            line,
            &format!("def handle_{k}(req):"),
        );
    } else if roll < 0.3 {
        label = "culprit_spike";
        // The most frequent signature, multiplied so the regression
        // adds at least ~2 errors a minute: a real, visible spike.
        let sig = (0..svc.sigs.len())
            .max_by(|a, b| svc.sigs[*a].rate.total_cmp(&svc.sigs[*b].rate))
            .unwrap_or(0);
        let per_minute = svc.sigs[sig].rate * svc.base_rpm;
        let factor = rng.range(4.0, 10.0).max(1.0 + 2.0 / per_minute.max(1e-9));
        svc.injected = Some((rev, Injection::Spike { sig, factor }));
        let s = &svc.sigs[sig];
        culprit_file = Some(s.file.clone());
        culprit_line = Some(s.line);
        diff = hunk(&s.file, s.line, &format!("def {}(conn):", s.function));
    } else {
        let c = rng.uniform();
        if c < 0.25 {
            confounder = Some("surge");
            svc.surge = Some((3.0, t + 30 * MIN));
            diff = hunk(&format!("src/{}/util.py", svc.name), 500, "def fmt(x):");
        } else if c < 0.45 {
            confounder = Some("rolling");
            svc.rolling = Some((prev, t + 20 * MIN));
            diff = hunk(&format!("src/{}/util.py", svc.name), 300, "def parse(x):");
        } else if c < 0.6 {
            confounder = Some("docs");
            diff = hunk("README.md", 10, "");
        } else if c < 0.75 {
            // An upstream outage starting right after this clean deploy.
            confounder = Some("outage");
            let mut affected: Vec<usize> =
                (0..args.services).filter(|_| rng.uniform() < 0.3).collect();
            if !affected.contains(&si) {
                affected.push(si);
            }
            outages.push((t + 2 * MIN, affected));
            diff = hunk(
                &format!("tests/test_{}.py", svc.name),
                20,
                "def test_fmt():",
            );
        } else {
            diff = hunk(&format!("src/{}/util.py", svc.name), 700, "def helper(x):");
        }
    }
    writeln!(
        buf,
        "{}",
        serde_json::json!({"type":"deploy","ts":t,"service":svc.name,"revision":format!("r{rev}"),
            "previous_revision":format!("r{prev}"),"repo":format!("shop/{}", svc.name),"diff":diff})
    )
    .expect("write to string");
    let truth_line = Truth {
        service: svc.name.clone(),
        revision: format!("r{rev}"),
        deployed_at_ms: t,
        label: label.to_owned(),
        confounder: confounder.map(str::to_owned),
        culprit_file,
        culprit_line,
        ..Truth::default()
    };
    writeln!(
        truth,
        "{}",
        serde_json::to_string(&truth_line).expect("serializable")
    )?;
    Ok(())
}

/// One minute of `svc` at `t`: traffic per serving revision, its
/// background errors, the injected error and outage timeouts, into `buf`;
/// returns the lines written.
fn minute(
    svc: &mut Service,
    si: usize,
    t: i64,
    start_ms: i64,
    rng: &mut Rng,
    outages: &[(i64, Vec<usize>)],
    buf: &mut String,
) -> usize {
    const MIN: i64 = 60_000;
    let mut lines = 0usize;
    // Traffic per live revision.
    let day_frac = ((t - start_ms) as f64 / 86_400_000.0 + svc.phase).fract();
    let mut rpm = svc.base_rpm * (1.0 + 0.6 * (2.0 * std::f64::consts::PI * day_frac).sin());
    if let Some((m, until)) = svc.surge {
        if t < until {
            rpm *= m;
        } else {
            svc.surge = None;
        }
    }
    let mut shares = vec![(svc.revision, 1.0)];
    if let Some((prev, until)) = svc.rolling {
        if t < until {
            shares = vec![(prev, 0.5), (svc.revision, 0.5)];
        } else {
            svc.rolling = None;
        }
    }
    for (rev, share) in shares {
        let requests = rng.poisson(rpm * share);
        lines += 1;
        writeln!(
        buf,
        r#"{{"type":"traffic","ts":{t},"service":"{}","revision":"r{rev}","requests":{requests},"window_s":60}}"#,
        svc.name
    )
    .expect("write to string");
        let injected = svc.injected.filter(|(r, _)| *r == rev).map(|(_, i)| i);
        for (j, s) in svc.sigs.iter().enumerate() {
            let factor = match injected {
                Some(Injection::Spike { sig, factor }) if sig == j => factor,
                _ => 1.0,
            };
            let n = rng.poisson(s.rate * s.multiplier * factor * requests as f64);
            for _ in 0..n {
                lines += 1;
                let msg = fill(s.template, rng);
                let stack = format!(
                "Traceback (most recent call last):\n  File \"/app/{}\", line {}, in {}\nRuntimeError: failed",
                s.file, s.line, s.function
            );
                log_line(
                    buf,
                    t + rng.below(59_000) as i64,
                    &svc.name,
                    rev,
                    &msg,
                    Some(&stack),
                );
            }
        }
        if let Some(Injection::New { rate, line, k }) = injected {
            let n = rng.poisson(rate * requests as f64);
            for _ in 0..n {
                lines += 1;
                let msg = format!(
                "TypeError: unsupported operand type(s) for +: 'NoneType' and 'int' in handle_{k} (order={})",
                rng.next() % 1_000_000
            );
                let stack = format!(
                "Traceback (most recent call last):\n  File \"/usr/lib/python3.11/site-packages/flask/app.py\", line 880, in dispatch\n  File \"/app/src/{}/handlers.py\", line {line}, in handle_{k}\nTypeError: unsupported operand",
                svc.name
            );
                log_line(
                    buf,
                    t + rng.below(59_000) as i64,
                    &svc.name,
                    rev,
                    &msg,
                    Some(&stack),
                );
            }
        }
        // Outages: same template everywhere, 30 minutes.
        for (o, (start, affected)) in outages.iter().enumerate() {
            if t >= *start && t < start + 30 * MIN && affected.contains(&si) {
                let n = rng.poisson(5e-3 * requests as f64);
                for _ in 0..n {
                    lines += 1;
                    let msg = format!(
                        "Timeout after {}ms calling upstream-{o} (request_id={})",
                        3000 + rng.below(500),
                        rng.next() % 1_000_000
                    );
                    log_line(
                        buf,
                        t + rng.below(59_000) as i64,
                        &svc.name,
                        rev,
                        &msg,
                        None,
                    );
                }
            }
        }
    }
    lines
}

fn log_line(buf: &mut String, ts: i64, service: &str, rev: u32, msg: &str, stack: Option<&str>) {
    let v = serde_json::json!({"ts": ts, "service": service, "revision": format!("r{rev}"),
        "level": "error", "message": msg, "stack": stack});
    writeln!(buf, "{v}").expect("write to string");
}

fn fill(template: &str, rng: &mut Rng) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').map_or(rest.len(), |e| i + e + 1);
        match &rest[i..end] {
            "{n}" => write!(out, "{}", 1 + rng.below(5000)).expect("write to string"),
            _ => write!(out, "{:x}", rng.next() & 0xffff_ffff_ffff).expect("write to string"),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A one-hunk diff changing `line` of `file` (function context `func`).
fn hunk(file: &str, line: u32, func: &str) -> String {
    let start = line.saturating_sub(2).max(1);
    format!(
        "diff --git a/{file} b/{file}\n--- a/{file}\n+++ b/{file}\n@@ -{start},5 +{start},5 @@ {func}\n     a = 1\n     b = 2\n-    c = compute(a, b)\n+    c = compute(a, b, strict=True)\n     return c\n"
    )
}
