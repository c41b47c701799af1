//! Rebuild when migrations change: they are embedded in the binary. And tell the tests which
//! real peers the run was asked to use, so that a test needing one is *ignored* (and counted as
//! such) when it is absent, never passed without running.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    println!("cargo::rustc-check-cfg=cfg(georeport_tests)");
    println!("cargo::rustc-check-cfg=cfg(browser_tests)");
    println!("cargo:rerun-if-env-changed=MASHANGBAN_TEST_DATABASE_URL");
    println!("cargo:rerun-if-env-changed=MASHANGBAN_TEST_GEOREPORT");
    println!("cargo:rerun-if-env-changed=MASHANGBAN_TEST_BROWSER");
    if std::env::var_os("MASHANGBAN_TEST_DATABASE_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo:rustc-cfg=postgres_tests");
    }
    if std::env::var_os("MASHANGBAN_TEST_GEOREPORT").is_some_and(|v| !v.is_empty() && v != "0") {
        println!("cargo:rustc-cfg=georeport_tests");
    }
    if std::env::var_os("MASHANGBAN_TEST_BROWSER").is_some_and(|v| !v.is_empty() && v != "0") {
        println!("cargo:rustc-cfg=browser_tests");
    }
}
