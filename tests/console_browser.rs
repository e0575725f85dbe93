//! The web console in a real browser, fed a real backtest output: the
//! quickstart history is backtested by the binary, `selfheal console --from`
//! serves the directory, and headless Chromium loads the fleet, service and
//! incident pages. Needs Chromium, no broker.

mod browser;

use std::path::Path;
use std::process::{Command, Stdio};

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_console_shows_a_backtest_in_a_browser() {
    let Some(chromium) = browser::chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/examples/bad-deploy.ndjson");
    let bt = Command::new(env!("CARGO_BIN_EXE_selfheal"))
        .arg("backtest")
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        bt.status.success(),
        "{}",
        String::from_utf8_lossy(&bt.stderr)
    );
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_selfheal"))
            .args(["console", "--listen", "127.0.0.1:0", "--from"])
            .arg(&out)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr = browser::address_from(child.0.stderr.take().unwrap(), "console: ");

    let fleet = browser::dump_dom(&chromium, &format!("http://{addr}/"));
    assert!(fleet.contains("Open incidents (1)"), "{fleet}");
    assert!(fleet.contains("href=\"/incident/checkout/b\""), "{fleet}");

    let service = browser::dump_dom(&chromium, &format!("http://{addr}/service/checkout"));
    assert!(service.contains("<svg class=\"timeline\""), "{service}");
    assert!(
        service.contains("deploy b") && service.contains("detected b"),
        "{service}"
    );

    let incident = browser::dump_dom(&chromium, &format!("http://{addr}/incident/checkout/b"));
    let cited = incident
        .split("class=\"cited\">")
        .nth(1)
        .unwrap_or_else(|| panic!("no cited line:\n{incident}"));
    assert!(
        cited.starts_with("  216 +        rate = rates[item.currency]"),
        "{cited}"
    );
    assert!(
        incident.contains("<span class=\"caused\">caused</span>"),
        "{incident}"
    );
    assert!(
        incident.contains("cites src/checkout/pricing.py:216"),
        "{incident}"
    );
    assert!(
        incident.contains("<td>fix_forward</td><td>well_attributed_fix_forward</td>"),
        "{incident}"
    );

    let shots = browser::screenshot_dir();
    browser::screenshot(
        &chromium,
        &format!("http://{addr}/incident/checkout/b"),
        &shots.join("backtest-incident.png"),
        1100,
        900,
    );
}
