//! What a person sees when something is wrong, from the real binary: a
//! config typo named by its variable in one short message (no backtrace even
//! with `RUST_BACKTRACE` set), `--out` checked before a backtest runs, rejected
//! lines pointed at, and the per-deploy table at the end. Needs no broker.

use std::path::Path;
use std::process::{Command, Output};

fn selfheal(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_selfheal"));
    cmd.args(args).env_remove("SELFHEAL_BACKTRACE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run selfheal")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/examples/bad-deploy.ndjson")
        .display()
        .to_string()
}

#[test]
fn a_mistyped_variable_is_named_in_a_short_message_without_a_backtrace() {
    let o = selfheal(
        &["up"],
        &[
            ("SELFHEAL__KAFKA__BOOTSTRAPP", "localhost:9092"),
            ("RUST_BACKTRACE", "1"),
            ("RUST_LOG", "error"),
        ],
    );
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("SELFHEAL__KAFKA__BOOTSTRAPP"), "{err}");
    assert!(err.contains("kafka.bootstrapp"), "{err}");
    assert!(!err.contains("backtrace"), "{err}");
    assert!(err.lines().count() <= 3, "{err}");
}

#[test]
fn an_out_of_range_value_is_refused_with_its_key() {
    let o = selfheal(
        &["backtest", "--input", &example(), "--out", "/nonexistent/x"],
        &[("SELFHEAL__DETECTOR__ALPHA", "7.0")],
    );
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("`detector.alpha` must be between 0 and 1"),
        "{err}"
    );
    let o = selfheal(&["normalize", "--threads", "0"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--threads"), "{}", stderr(&o));
}

#[test]
fn backtest_checks_out_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("taken");
    std::fs::write(&file, "").unwrap();
    let o = selfheal(
        &[
            "backtest",
            "--input",
            &example(),
            "--out",
            &file.display().to_string(),
        ],
        &[],
    );
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("is not a directory"), "{err}");
    assert!(!err.contains("records"), "refused before reading: {err}");
}

#[test]
fn backtest_ends_with_a_table_and_points_at_rejected_lines() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    let mut text = std::fs::read_to_string(example()).unwrap();
    text.push_str("{\"type\":\"log\",\"service\":\"x\"}\nnot json\n");
    std::fs::write(&input, text).unwrap();
    let out = dir.path().join("out");
    let o = selfheal(
        &[
            "backtest",
            "--input",
            &input.display().to_string(),
            "--out",
            &out.display().to_string(),
        ],
        &[],
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let rejected = out.join("rejected.ndjson");
    assert!(err.contains("2 of"), "{err}");
    assert!(err.contains(&rejected.display().to_string()), "{err}");
    let lines = std::fs::read_to_string(&rejected).unwrap();
    assert!(
        lines.contains("\"line\":98,\"field\":\"(json)\",\"reason\":\"invalid JSON at column 2"),
        "{lines}"
    );
    let table = String::from_utf8_lossy(&o.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with("checkout"))
        .unwrap_or_else(|| panic!("no checkout row:\n{table}"));
    for part in ["src/checkout/pricing.py:216", "caused", "KeyError"] {
        assert!(row.contains(part), "`{part}` missing: {table}");
    }
}
