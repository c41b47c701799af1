//! The docs UI in a real browser: Debian's Chromium, driven by Playwright for Python
//! (`tests/browser/docs_ui.py`), against the real server. Headers alone cannot show that the
//! Swagger UI still works under its Content-Security-Policy; the browser can.

/// `/docs/` draws every operation and "Try it out" reaches the server, with no CSP violation,
/// console error or failed request. Ignored unless the run asks for a browser
/// (`MASHANGBAN_TEST_BROWSER=1` at build time, as `.ci/run` does after installing Chromium and
/// Playwright); then a missing browser fails the test.
#[actix_web::test]
#[cfg_attr(
    not(browser_tests),
    ignore = "needs MASHANGBAN_TEST_BROWSER=1 at build time, Debian's chromium and `pip install playwright`"
)]
async fn the_docs_ui_works_under_its_content_security_policy() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/docs_ui.py");
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Chromium is missing: `apt-get install chromium`"
    );
    let app = crate::helpers::spawn_sqlite().await;
    let base = app.url("");
    let shots = tempfile::tempdir().unwrap();
    let shot = shots.path().join("docs.png");
    let shot_arg = shot.to_string_lossy().into_owned();
    let stdout = crate::helpers::run_python(script, vec![base, shot_arg]).await;
    assert!(stdout.starts_with("OK:"), "{stdout}");
    // The browser drew something: a PNG screenshot of the page.
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "no screenshot");
}
