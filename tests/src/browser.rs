//! Headless Chromium, as a person's browser: renders a page (a URL or a
//! saved file), returns the DOM it built and keeps a screenshot under
//! `target/screenshots/` (CI keeps them). Without Chromium a test is
//! skipped here, but never in CI (`.ci/run` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Chromium's path, or None to skip (outside CI only).
pub fn chromium() -> Option<&'static str> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install Chromium (.ci/run does)"
        );
        eprintln!("SKIPPED: no Chromium here (.ci/run installs it)");
    }
    found
}

/// Where screenshots go: `target/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

/// Renders `url` in headless Chromium at `chromium`: saves a screenshot as
/// `<name>.png` in [`screenshot_dir`] and returns the DOM it built.
pub fn render(chromium: &str, url: &str, name: &str) -> String {
    let profile = tempfile::tempdir().expect("profile");
    let run = |action: &str| {
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--ignore-certificate-errors",
                "--window-size=1280,1600",
                &format!("--user-data-dir={}", profile.path().display()),
                action,
                url,
            ])
            .output()
            .expect("run chromium")
    };
    let shot = screenshot_dir().join(format!("{name}.png"));
    let _ = std::fs::remove_file(&shot);
    let out = run(&format!("--screenshot={}", shot.display()));
    assert!(
        shot.exists(),
        "no screenshot of {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&run("--dump-dom").stdout).into_owned()
}

/// Whether `text` holds a raw byte array as serde writes one (`[224,115,`).
pub fn has_byte_array(text: &str) -> bool {
    text.as_bytes().windows(5).any(|w| {
        w[0] == b'['
            && w[1].is_ascii_digit()
            && w[1..].iter().take_while(|b| b.is_ascii_digit()).count() <= 3
            && w[1..].contains(&b',')
    })
}
