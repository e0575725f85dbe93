//! Headless Chromium (the Debian package `chromium`, installed by
//! `deploy/test.sh`) for the console tests: the page as the browser built it
//! (`--dump-dom`) and screenshots. Without a browser a test is skipped
//! locally and fails under `CI=true`.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The browser: `SELFHEAL_TEST_CHROMIUM`, else `chromium` on the PATH.
pub fn chromium() -> Option<PathBuf> {
    let bin = std::env::var_os("SELFHEAL_TEST_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("chromium"));
    let found = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    match found {
        true => Some(bin),
        false if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => panic!(
            "this test needs headless Chromium but `{}` does not run; \
             ./deploy/test.sh installs the Debian package `chromium`",
            bin.display()
        ),
        false => {
            eprintln!(
                "SKIPPED: no Chromium (`{}`); run ./deploy/test.sh",
                bin.display()
            );
            None
        }
    }
}

fn headless(bin: &Path, profile: &Path) -> Command {
    let mut c = Command::new(bin);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// The DOM after the page loaded (scripts ran), as Chromium serializes it.
pub fn dump_dom(bin: &Path, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = headless(bin, profile.path())
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium --dump-dom {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A PNG of the page at `width`×`height` CSS pixels.
pub fn screenshot(bin: &Path, url: &str, png: &Path, width: u32, height: u32) {
    let profile = tempfile::tempdir().unwrap();
    let out = headless(bin, profile.path())
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium --screenshot {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(png).expect("screenshot written");
    assert!(
        bytes.starts_with(b"\x89PNG"),
        "{} is not a PNG",
        png.display()
    );
}

/// Where screenshots go: `SELFHEAL_SCREENSHOT_DIR`, else
/// `target/console-screenshots` (kept after the test, for a person to look at).
pub fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("SELFHEAL_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots")
        });
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Reads a process's stderr lines on a thread (echoing them) until one
/// carries `http://ADDR/` after `marker`; returns ADDR.
pub fn address_from(stderr: impl std::io::Read + Send + 'static, marker: &'static str) -> String {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            eprintln!("[console] {line}");
            let wanted = format!("{marker}http://");
            if let Some(at) = line.find(&wanted) {
                let rest = &line[at + wanted.len()..];
                if let Some(addr) = rest.split('/').next() {
                    let _ = tx.send(addr.to_owned());
                }
            }
        }
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("the console did not report its address")
}
