"""Drives the dashboard of a running `cardform serve` in headless Chromium (Debian's, through
Playwright: no browser download) and checks what a person would see.

Usage: dashboard.py BASE_URL EXPECTED_JSON
  token in CARDFORM_SERVE_TOKEN; Chromium at CARDFORM_CHROMIUM (default /usr/bin/chromium);
  CARDFORM_SCREENSHOT=FILE.png keeps a picture of the page at the end.
  EXPECTED_JSON: {"cards": N, "charged": "12.50", "currency": "USDT",
                  "by_status": {"active": N}, "approve": "ID" or null}
  Amounts are compared as exact decimals (`decimal.Decimal`), never floats.
Prints one line per check; exits 0 when all pass, 1 on the first failure, 77 when Playwright or
Chromium is missing (the Rust test then says SKIPPED).
"""

import json
from decimal import Decimal
import os
import sys

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    print("SKIP: the Python package playwright is not installed")
    sys.exit(77)

CHROMIUM = os.environ.get("CARDFORM_CHROMIUM", "/usr/bin/chromium")
TIMEOUT_MS = 10_000


def fail(what):
    print(f"FAIL: {what}")
    sys.exit(1)


def check(ok, what):
    if not ok:
        fail(what)
    print(f"ok: {what}")


def table(page, table_id):
    """The rows of a table's body as {first cell: second cell}."""
    return page.eval_on_selector_all(
        f"#{table_id} tbody tr",
        "rows => Object.fromEntries(rows.map(r => [r.cells[0].textContent, r.cells[1].textContent]))",
    )


def log_in(page, base, token):
    page.goto(f"{base}/login")
    page.fill("input[name=token]", token)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{base}/")


def main():
    base, expected = sys.argv[1].rstrip("/"), json.loads(sys.argv[2])
    token = os.environ["CARDFORM_SERVE_TOKEN"]
    if not os.path.exists(CHROMIUM):
        print(f"SKIP: no Chromium at {CHROMIUM}")
        sys.exit(77)
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text} ({m.location.get('url')})"))
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: errors.append(f"request failed: {r.method} {r.url}: {r.failure}"))

        log_in(page, base, token)
        check(page.context.cookies()[0]["name"] == "cardform_session", "login set the session cookie")
        page.wait_for_selector("body[data-loaded=true]")
        check(page.title() == "cardform", "the dashboard loaded")
        shown = page.inner_text("#cards-total").replace(",", "")
        check(shown == str(expected["cards"]), f"cards shown {shown} = state list's {expected['cards']}")
        amount, _, currency = page.inner_text("#charged-total").replace(",", "").partition(" ")
        want = (Decimal(expected["charged"]), expected["currency"])
        check((Decimal(amount), currency) == want, f"charged shown {amount} {currency} = state list's {want}")
        by_status = {k: int(v) for k, v in table(page, "by-status").items()}
        check(by_status == expected["by_status"], f"cards by status {by_status} = state list's")

        approve = expected.get("approve")
        if approve:
            status = f"td.approval-status[data-id='{approve}']"
            check(page.inner_text(status) == "pending", f"approval {approve} shown pending")
            page.click(f"button[data-id='{approve}']")
            page.wait_for_function(
                "sel => { const e = document.querySelector(sel); return e && e.textContent !== 'pending'; }",
                arg=status,
            )
            now = page.inner_text(status)
            check(now in ("approved", "applied"), f"after Approve it shows {now}")

        page.reload()
        page.wait_for_selector("body[data-loaded=true]")
        if os.environ.get("CARDFORM_SCREENSHOT"):
            page.screenshot(path=os.environ["CARDFORM_SCREENSHOT"], full_page=True)
        check(not errors, "no console errors, page errors or failed requests" + "".join(f"\n  {e}" for e in errors))
        browser.close()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a timeout waiting for the page is a failure, said plainly
        fail(f"{type(e).__name__}: {e}")
