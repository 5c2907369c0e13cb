"""Fixtures of the browser console's tests: one real ``mwhost serve`` (admin secret generated,
so its printed console link is what logs in) and one headless Chromium driven by selenium
through Debian's chromium-driver, shared by the module's tests (each starts in seconds, and
the tests follow one operator's session)."""

from __future__ import annotations

import contextlib
import pathlib
import re
import shutil

import pytest

from tests.admin.support import tagger
from tests.conftest import ROOT, example_path
from tests.server.gunicorn_process import serve
from tests.server.test_swap import write_config

#: screenshots of each view, kept as test artifacts (one is docs/img/console.png)
SCREENSHOTS = ROOT / "build" / "console-screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
#: generous bound of every wait on the page: the tests share 2 cores with gunicorn and others
WAIT_S = 45
WORKERS = 2


@pytest.fixture(scope="module")
def console_host(tmp_path_factory):
    """mwhost serve with stages security_headers and tag (ctx console=v0), its admin secret
    generated: the token and console link are the ones it prints."""
    tmp_path = tmp_path_factory.mktemp("console")
    config = write_config(tmp_path, [("security_headers", example_path("security_headers").read_bytes()),
                                     ("tag", tagger("console", "v0"))])
    with serve(tmp_path, "--config", config, workers=WORKERS, admin_secret=None) as served:
        served.tmp_path = tmp_path
        yield served


def console_link(served) -> str:
    found = re.search(r"(http://\S+/_admin/ui/#token=\S+)", served.output())
    assert found, f"mwhost serve printed no console link:\n{served.output()}"
    return found.group(1)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium (WebDriver), logging every network request it makes."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert pathlib.Path(CHROMIUM).exists() and pathlib.Path(CHROMEDRIVER).exists(), \
        "chromium and chromium-driver are missing: run scripts/setup.sh"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1400,1000", "--no-first-run", "--disable-extensions",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        with contextlib.suppress(Exception):
            driver.quit()


@pytest.fixture(scope="module")
def screenshot(browser):
    """``screenshot(name)`` saves the page as build/console-screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def save(name: str) -> pathlib.Path:
        path = SCREENSHOTS / f"{name}.png"
        browser.save_screenshot(str(path))
        return path
    return save
