"""The docs UI (/docs/) in a real browser, under the server's own Content-Security-Policy.

Run by tests/api/browser.rs against a live server: python3 docs_ui.py BASE_URL SCREENSHOT.
Opens the Swagger UI in Debian's Chromium (Playwright drives it; no downloaded browser),
waits until the operations are drawn, runs "Try it out" on the public catalog, and fails on
any CSP violation, console error or failed request. Prints OK and a summary on success.
"""

import sys

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main(base: str, screenshot: str) -> int:
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        # Every CSP violation the page meets, reported by the browser itself.
        page.add_init_script(
            """
            window.__violations = [];
            document.addEventListener('securitypolicyviolation', (e) => {
              window.__violations.push(e.violatedDirective + ' ' + e.blockedURI);
            });
            """
        )
        page.on(
            "console",
            lambda m: m.type == "error" and problems.append(f"console error: {m.text}"),
        )
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on(
            "requestfailed",
            lambda r: problems.append(f"request failed: {r.url} {r.failure}"),
        )
        operations = 0
        try:
            response = page.goto(f"{base}/docs/", wait_until="networkidle")
            csp = response.headers.get("content-security-policy", "")
            if "script-src 'self'" not in csp:
                problems.append(f"the docs UI came without its policy: {csp!r}")
            page.wait_for_selector(".opblock-summary", timeout=20000)
            operations = page.locator(".opblock-summary").count()
            if operations < 20:
                problems.append(f"only {operations} operations drawn")

            # "Try it out" on the public catalog: the request goes to this server and back.
            block = page.locator("#operations-catalog-list_matters")
            if block.count() == 0:
                block = page.locator(".opblock", has_text="/api/v1/matters").first
            block.locator(".opblock-summary").first.click()
            block.locator("button.try-out__btn").click()
            block.locator("button.execute").click()
            answered = block.locator(".live-responses-table tbody .response-col_status").first
            answered.wait_for(timeout=20000)
            status = answered.inner_text()
            if status.strip() != "200":
                problems.append(f"Try it out answered {status.strip()!r}, not 200")

            page.screenshot(path=screenshot, full_page=False)
        except PlaywrightError as e:
            problems.append(f"the page did not work: {str(e).splitlines()[0]}")
        violations = page.evaluate("window.__violations")
        problems.extend(f"CSP violation: {v}" for v in violations)
        browser.close()
    if problems:
        print("\n".join(problems))
        return 1
    print(f"OK: {operations} operations drawn, Try it out answered 200, no CSP violation")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
