"""The browser console (/_admin/ui/) in real headless Chromium against a real ``mwhost serve``:
one operator's session, from the printed login link to a canary watched step by step."""

from __future__ import annotations

import json
import threading
import time

import pytest

from mwhost.admin.console import CONTENT_SECURITY_POLICY
from tests.admin.support import tagger
from tests.console.conftest import SCREENSHOTS, WAIT_S, WORKERS, console_link

pytestmark = pytest.mark.slow


def wait(browser, condition, message, timeout: float = WAIT_S):
    """Wait for ``condition(driver)``; ``message`` (or a callable making it) says what failed."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait
    # NOTE: the views redraw every 1.5 s: an element found a moment ago may be gone; look again
    waiting = WebDriverWait(browser, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,))
    try:
        return waiting.until(lambda driver: condition(driver))
    except TimeoutException:
        raise AssertionError(message() if callable(message) else message) from None


def css(browser, selector: str):
    from selenium.webdriver.common.by import By
    return browser.find_elements(By.CSS_SELECTOR, selector)


def text_of(browser, selector: str) -> str:
    """The element's text, or "" while it is not there (or redrawn under the lookup)."""
    from selenium.common.exceptions import StaleElementReferenceException
    try:
        found = css(browser, selector)
        return found[0].text if found else ""
    except StaleElementReferenceException:
        return ""


def open_view(browser, host, hash_: str, ready_selector: str) -> None:
    """Open a view by its hash (logged in through the printed link first if needed)."""
    if not browser.current_url.startswith(host.url) or not browser.execute_script(
            "return sessionStorage.getItem('mwhost.admin.token')"):
        browser.get(console_link(host))
    browser.execute_script("location.hash = arguments[0]", hash_)
    wait(browser, lambda d: css(d, ready_selector), f"{ready_selector} never showed on {hash_}")


def served_ctx(host) -> dict:
    status, _, body = host.request("GET", "/echo")
    assert status == 200, body
    return json.loads(body)["ctx"]


def upload_with_picker(browser, path, *, mode: str = "", fields: dict | None = None, confirm: bool = True) -> None:
    """Choose ``path`` with the file input (as the picker does), fill the form, submit, and
    accept the confirm dialog (``confirm``: a rollout, or replacing an existing stage's version)."""
    from selenium.webdriver.support.ui import Select
    css(browser, "#upload-file")[0].send_keys(str(path))
    wait(browser, lambda d: path.name in text_of(d, "#upload-file-name"), "the chosen file is not shown")
    Select(css(browser, "#upload-mode")[0]).select_by_value(mode)
    for name, value in (fields or {}).items():
        box = css(browser, f"#upload-form [name='{name}'], #upload-{name}")[0]
        box.clear()
        box.send_keys(value)
    css(browser, "#upload-submit")[0].click()
    if confirm:
        wait(browser, lambda d: _alert(d), "no confirm dialog before the upload")
        browser.switch_to.alert.accept()


def _alert(browser):
    from selenium.common.exceptions import NoAlertPresentException
    try:
        return browser.switch_to.alert
    except NoAlertPresentException:
        return None


def test_the_console_and_its_files_are_served_with_a_strict_policy_and_no_token(console_host):
    """The page and its scripts answer without a token, with the CSP (no inline script or
    style, never framed), X-Frame-Options DENY, no-store for the HTML; unknown files 404."""
    status, headers, body = console_host.request("GET", "/_admin/ui/")
    assert status == 200 and b'<script type="module" src="app.js">' in body
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY and "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
    assert b"<script>" not in body and b"style=" not in body
    status, headers, _ = console_host.request("GET", "/_admin/ui/app.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    status, headers, body = console_host.request("GET", "/_admin/ui/secrets.json")
    assert status == 404 and headers["content-type"] == "application/problem+json"
    status, headers, _ = console_host.request("GET", "/_admin/ui")
    assert status == 301 and headers["location"].endswith("/_admin/ui/")


def test_the_printed_link_logs_in_through_the_fragment_and_the_fragment_is_gone(console_host, browser, screenshot):
    """Opening the link ``mwhost serve`` printed logs in: the pipeline shows both stages with
    their version, ABI and live numbers, and the token is no longer in the address bar."""
    link = console_link(console_host)
    assert f"#token={console_host.printed_token()}" in link
    browser.get(link)
    wait(browser, lambda d: css(d, "#pipeline-table tr[data-stage='tag']"), "the pipeline never showed")
    assert "token" not in browser.current_url and browser.current_url.endswith("/_admin/ui/#/pipeline")
    assert browser.execute_script("return sessionStorage.getItem('mwhost.admin.token')") == console_host.printed_token()
    assert [row.get_attribute("data-stage") for row in css(browser, "#pipeline-table tbody tr")] == \
        ["security_headers", "tag"]
    row = text_of(browser, "#pipeline-table tr[data-stage='tag']")
    assert "v1" in row and "config" in row
    # NOTE: traffic all along: the numbers are over the last 5 s, so a burst would age out
    with _traffic(console_host):
        wait(browser, lambda d: _number(text_of(d, "#pipeline-table tr[data-stage='tag'] .calls")) > 0,
             "no live calls/s for the stage")
        wait(browser, lambda d: text_of(d, "#pipeline-table tr[data-stage='tag'] .p99").endswith(("ms", "µs")),
             "no live p99 for the stage")
        assert text_of(browser, "#pipeline-table tr[data-stage='tag'] .failures") == "0.0%"
        screenshot("pipeline")


def test_an_upload_with_the_file_picker_serves_and_a_rollback_brings_the_old_version_back(
        console_host, browser, screenshot, tmp_path):
    """A module chosen with the file picker becomes the served version (HTTP shows it); the
    Stage view lists both kept versions, and its rollback (confirmed) serves the old one."""
    assert served_ctx(console_host)["console"] == "v0"
    module = tmp_path / "tag-v1.wasm"
    module.write_bytes(tagger("console", "v1"))
    open_view(browser, console_host, "#/stage/tag", "#upload-file")
    upload_with_picker(browser, module, fields={"timeout_ms": "900"})
    wait(browser, lambda d: "active" in text_of(d, "#upload-ok"), "the upload did not report the new version")
    assert _eventually(lambda: served_ctx(console_host)["console"] == "v1"), "the new version does not serve"
    wait(browser, lambda d: len(css(d, "#versions-table tbody tr")) >= 2, "the kept versions are not listed")
    assert "timeout_ms=900" in text_of(browser, "#versions-table tr.active")
    screenshot("stage")
    css(browser, "#versions-table button[data-rollback]")[0].click()
    wait(browser, lambda d: _alert(d), "the rollback was not confirmed first")
    browser.switch_to.alert.accept()
    wait(browser, lambda d: "rolled back tag" in text_of(d, "#upload-result"), "the rollback was not reported")
    assert _eventually(lambda: served_ctx(console_host)["console"] == "v0"), "the rollback does not serve"


def test_a_refused_upload_shows_the_problems_detail(console_host, browser, screenshot, tmp_path):
    """A file that is no WebAssembly module is refused by the API, and the page shows the
    problem's status and its full detail; nothing changes."""
    before = served_ctx(console_host)
    bogus = tmp_path / "notes.wasm"
    bogus.write_bytes(b"these are notes, not a module")
    open_view(browser, console_host, "#/stage/tag", "#upload-file")
    upload_with_picker(browser, bogus)
    wait(browser, lambda d: "WebAssembly" in text_of(d, "#upload-result .problem-detail"), "no problem detail shown")
    assert text_of(browser, "#upload-result .problem strong").startswith("400")
    screenshot("stage-refused")
    assert served_ctx(console_host) == before


def test_a_canary_started_from_the_page_moves_its_percentage_on_the_page(console_host, browser, screenshot, tmp_path):
    """A canary started from the upload form shows its first step's share; with traffic from
    distinct users the page shows the share move on (a later step or the promotion)."""
    module = tmp_path / "tag-v2.wasm"
    module.write_bytes(tagger("console", "v2"))
    open_view(browser, console_host, "#/stage/tag", "#upload-file")
    # NOTE: a loose latency gate: on a loaded 2-core machine a good candidate's p99 can be
    # noise-far from the baseline's; this test is about the page, not the gate
    upload_with_picker(browser, module, mode="canary", fields={
        "steps": "50,100", "step_s": "1", "key": "header:x-user", "min_requests": "10",
        "max_latency_ratio": "100"})
    wait(browser, lambda d: "canary of tag started" in text_of(d, "#upload-ok"), "the canary did not start")
    css(browser, "#upload-ok a")[0].click()
    wait(browser, lambda d: text_of(d, "#rollout-percent") == "50%", "the first step's share is not shown")
    screenshot("rollouts-step1")
    with _traffic(console_host):
        wait(browser, lambda d: text_of(d, "#rollout-percent") == "100%",
             lambda: f"the share never moved on: {_rollout(console_host)}", timeout=WAIT_S * 2)
    wait(browser, lambda d: text_of(d, "#rollout-state") == "promoted", "the promotion is not shown")
    wait(browser, lambda d: len(css(d, "#rollout-charts svg rect.bar.candidate")) >= 1, "no per-step charts")
    screenshot("rollouts")
    assert _eventually(lambda: served_ctx(console_host)["console"] == "v2")


def test_the_workers_and_audit_views_show_every_worker_and_the_latest_writes(console_host, browser, screenshot):
    """Workers lists each worker's pid at the manifest's generation as ready; Audit lists the
    session's uploads, rollback and refusal newest first."""
    open_view(browser, console_host, "#/workers", "#workers-table")
    pids = console_host.worker_pids()
    wait(browser, lambda d: {int(r.get_attribute("data-pid")) for r in css(d, "#workers-table tbody tr")} == pids
         and text_of(d, "#workers-table").count("ready") == WORKERS,
         lambda: f"the workers {pids} are not all shown ready: {text_of(browser, '#workers')!r}")
    screenshot("workers")
    open_view(browser, console_host, "#/audit", "#audit-table tbody tr")
    wait(browser, lambda d: "rollout.start" in text_of(d, "#audit-table"),
         lambda: f"the rollout is not in the audit view: {text_of(browser, '#audit')!r}")
    table = text_of(browser, "#audit-table")
    assert "rollback" in table and "upload" in table and "refused" in table
    screenshot("audit")


def test_the_pipeline_reorders_by_arrow_and_by_drag_and_drop(console_host, browser):
    """The row arrows and a drag-and-drop of one row onto another both reorder the stages
    through the admin API (the manifest's order changes; the page shows it)."""
    open_view(browser, console_host, "#/pipeline", "#pipeline-table tr[data-stage='tag']")
    browser.execute_script("document.querySelector(\"button[title='move tag up']\").click()")
    wait(browser, lambda d: _rows(d) == ["tag", "security_headers"], "the arrow did not reorder")
    assert _api_order(console_host) == ["tag", "security_headers"]
    browser.execute_script("""
        const [source, target] = [arguments[0], arguments[1]].map((name) =>
            document.querySelector(`#pipeline-table tr[data-stage='${name}']`));
        const data = new DataTransfer();
        source.dispatchEvent(new DragEvent("dragstart", {bubbles: true, dataTransfer: data}));
        target.dispatchEvent(new DragEvent("dragover", {bubbles: true, cancelable: true, dataTransfer: data}));
        target.dispatchEvent(new DragEvent("drop", {bubbles: true, cancelable: true, dataTransfer: data}));
        source.dispatchEvent(new DragEvent("dragend", {bubbles: true, dataTransfer: data}));
    """, "security_headers", "tag")
    wait(browser, lambda d: _rows(d) == ["security_headers", "tag"], "the drop did not reorder")
    assert _api_order(console_host) == ["security_headers", "tag"]


def test_rollout_controls_pause_resume_and_a_confirmed_abort(console_host, browser, screenshot):
    """A canary started through the API shows up in the Rollouts view; Pause, Resume and
    Abort (after its confirm dialog) change its state on the page and in the API."""
    status, _, body = console_host.request(
        "PUT", "/_admin/middlewares/tag?rollout=canary&steps=10,100&step_s=3600",
        {**console_host.admin_headers(), "Content-Type": "application/wasm"}, tagger("console", "v3"))
    assert status == 201, body
    open_view(browser, console_host, "#/rollouts/tag", "#rollout-pause")
    wait(browser, lambda d: text_of(d, "#rollout-percent") == "10%", "the canary's share is not shown")
    _click_when_enabled(browser, "#rollout-pause")
    wait(browser, lambda d: text_of(d, "#rollout-state") == "paused", "pause is not shown")
    screenshot("rollouts-paused")
    _click_when_enabled(browser, "#rollout-resume")
    wait(browser, lambda d: text_of(d, "#rollout-state") in ("running", "waiting"), "resume is not shown")
    _click_when_enabled(browser, "#rollout-abort")
    wait(browser, lambda d: _alert(d), "abort was not confirmed first")
    browser.switch_to.alert.dismiss()
    assert console_host.get_json("/_admin/middlewares/tag/rollout", console_host.admin_headers())[1]["state"] \
        in ("running", "waiting")  # dismissed: nothing changed
    _click_when_enabled(browser, "#rollout-abort")
    wait(browser, lambda d: _alert(d), "abort was not confirmed first")
    browser.switch_to.alert.accept()
    wait(browser, lambda d: text_of(d, "#rollout-state") == "aborted", "the abort is not shown")
    assert console_host.get_json("/_admin/middlewares/tag/rollout", console_host.admin_headers())[1]["state"] == "aborted"


def test_a_shadow_shows_its_differences(console_host, browser, screenshot):
    """A shadow whose candidate sets another ctx key shows, under traffic, its count of
    different answers and the differences themselves; an abort ends it."""
    status, _, body = console_host.request(
        "PUT", "/_admin/middlewares/tag?rollout=shadow&percent=100",
        {**console_host.admin_headers(), "Content-Type": "application/wasm"}, tagger("shadowed", "yes"))
    assert status == 201, body
    open_view(browser, console_host, "#/rollouts/tag", "#rollout-state")
    with _traffic(console_host):
        wait(browser, lambda d: css(d, "#shadow-differences tbody tr"), "no shadow differences shown")
    assert "different" in text_of(browser, "#shadow-counts")
    assert "shadowed" in text_of(browser, "#shadow-differences")
    screenshot("rollouts-shadow")
    status, _, body = console_host.request("POST", "/_admin/middlewares/tag/rollout/abort", console_host.admin_headers())
    assert status == 200, body


def test_a_pasted_token_logs_in_and_a_wrong_one_is_refused_with_a_message(console_host, browser):
    """Without a stored token the page asks for one; a token the server refuses stays out
    with the reason shown; the real one opens the pipeline."""
    browser.get(f"{console_host.url}/_admin/ui/")
    browser.execute_script("sessionStorage.clear(); location.reload()")
    wait(browser, lambda d: css(d, "#login-token") and css(d, "#login-token")[0].is_displayed(), "no login form")
    css(browser, "#login-token")[0].send_keys("not-a-token")
    css(browser, "#login-form button")[0].click()
    wait(browser, lambda d: "token" in text_of(d, "#login-error"), "the refusal is not shown")
    assert browser.execute_script("return sessionStorage.getItem('mwhost.admin.token')") is None
    box = css(browser, "#login-token")[0]
    box.clear()
    box.send_keys(console_host.printed_token())
    css(browser, "#login-form button")[0].click()
    wait(browser, lambda d: css(d, "#pipeline-table tr[data-stage='tag']"), "the pipeline did not open")


def test_no_request_the_browser_sent_carried_the_token_in_its_url(console_host, browser):
    """Every URL the browser asked for during the session (from Chromium's network log) is
    free of the token, and the server's log never saw it after it printed it."""
    token = console_host.printed_token()
    open_view(browser, console_host, "#/pipeline", "#pipeline-table tr[data-stage='tag']")
    urls = [json.loads(entry["message"])["message"]["params"]["request"]["url"]
            for entry in browser.get_log("performance")
            if json.loads(entry["message"])["message"]["method"] == "Network.requestWillBeSent"]
    assert any("/_admin/pipeline" in url for url in urls), urls[:20]
    assert not [url for url in urls if token in url or "token=" in url.split("#")[0]]
    assert console_host.output().count(token) == 2  # the export line and the link, nothing after
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"
              and "Content Security Policy" in entry["message"]]
    assert not errors, errors
    assert (SCREENSHOTS / "pipeline.png").exists()


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def _rollout(host) -> dict:
    return host.get_json("/_admin/middlewares/tag/rollout", host.admin_headers())[1]


def _rows(browser) -> list[str]:
    from selenium.common.exceptions import StaleElementReferenceException
    try:
        return [row.get_attribute("data-stage") for row in css(browser, "#pipeline-table tbody tr")]
    except StaleElementReferenceException:
        return []


def _api_order(host) -> list[str]:
    status, pipeline = host.get_json("/_admin/pipeline", host.admin_headers())
    assert status == 200, pipeline
    return [stage["name"] for stage in pipeline["stages"]]


def _click_when_enabled(browser, selector: str) -> None:
    """Click the button once it is there and enabled (the view redraws after each change).
    NOTE: the click runs after the script returns: a confirm dialog would block the script."""
    wait(browser, lambda d: browser.execute_script(
        "const b = document.querySelector(arguments[0]); if (!b || b.disabled) return false; "
        "setTimeout(() => b.click()); return true",
        selector), f"{selector} never became clickable")


def _eventually(check, timeout: float = WAIT_S) -> bool:
    """Poll ``check`` until true (a version reaches every worker within a second or two)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


class _traffic:
    """Requests from distinct users in a background thread while the block runs (bounded)."""

    def __init__(self, host, limit: int = 20000) -> None:
        self.host, self.limit = host, limit
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for n in range(self.limit):
            if self.stop.is_set():
                return
            try:
                self.host.request("GET", "/", {"X-User": f"user-{n}"})
            except OSError:
                pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(30)


def test_replacing_an_active_version_asks_first_and_a_new_stage_does_not(console_host, browser, tmp_path):
    """An upload that would replace an existing stage's active version at once is confirmed
    first (declined, nothing changes); the first version of a new stage is not asked about."""
    before = served_ctx(console_host)
    _, _, body = console_host.request("GET", "/_admin/middlewares/tag/versions", console_host.admin_headers())
    kept = len(json.loads(body)["versions"])
    module = tmp_path / "tag-declined.wasm"
    module.write_bytes(tagger("console", "declined"))
    open_view(browser, console_host, "#/stage/tag", "#upload-file")
    upload_with_picker(browser, module, confirm=False)
    wait(browser, lambda d: _alert(d), "replacing the active version was not confirmed first")
    assert "tag" in browser.switch_to.alert.text
    browser.switch_to.alert.dismiss()
    _, _, body = console_host.request("GET", "/_admin/middlewares/tag/versions", console_host.admin_headers())
    assert len(json.loads(body)["versions"]) == kept and served_ctx(console_host) == before
    fresh = tmp_path / "fresh.wasm"
    fresh.write_bytes(tagger("fresh", "yes"))
    box = css(browser, "#upload-name")[0]
    box.clear()
    box.send_keys("fresh_stage")
    upload_with_picker(browser, fresh, confirm=False)
    wait(browser, lambda d: "fresh_stage: version" in text_of(d, "#upload-ok"), "the new stage was not added")
    status, _, body = console_host.request("DELETE", "/_admin/middlewares/fresh_stage", console_host.admin_headers())
    assert status == 200, body


def test_a_refused_token_is_forgotten_and_the_login_form_asks_for_another(console_host, browser):
    """A stored token the API answers 401 is removed from sessionStorage (a reload does not
    send it again) and the login form says why."""
    open_view(browser, console_host, "#/pipeline", "#pipeline-table tr[data-stage='tag']")
    browser.execute_script("sessionStorage.setItem('mwhost.admin.token', 'not-a-token'); location.hash = '#/workers'")
    wait(browser, lambda d: "refused" in text_of(d, "#login-error"), "the refusal is not shown")
    assert browser.execute_script("return sessionStorage.getItem('mwhost.admin.token')") is None
    browser.refresh()
    wait(browser, lambda d: css(d, "#login-token") and css(d, "#login-token")[0].is_displayed(), "no login form")


def test_a_malformed_token_link_shows_the_login_form_with_a_message(console_host, browser):
    """A #token= fragment with a bad %-escape shows the login form and says the link is
    malformed (no script error), keeps no token and leaves no token in the address bar."""
    browser.get_log("browser")  # NOTE: drains the entries of earlier tests (a 401 is logged as SEVERE)
    browser.get(f"{console_host.url}/_admin/ui/#token=abc%E0%A4%A")
    wait(browser, lambda d: "malformed" in text_of(d, "#login-error"), "no message for the malformed link")
    assert browser.execute_script("return sessionStorage.getItem('mwhost.admin.token')") is None
    assert "token" not in browser.current_url
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
