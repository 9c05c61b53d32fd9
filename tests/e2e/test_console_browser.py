"""The console in a real browser (Debian's chromium + chromium-driver, driven
by python3-selenium, headless, --no-sandbox as the tests run as root)
against a real `fapiao serve`: the first sign-in with the enrolment token
shows the QR code, the sign-in with a computed TOTP code opens the overview,
which shows who is signed in, the readiness checks and the Chart.js chart,
and switches to English.  docs/console.md lists what the next browser tests
cover."""
import shutil
import time
from urllib.parse import parse_qs, urlparse

import pytest

from conftest import SLOW
from test_console import PASSWORD, console_server, fresh_code

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser(tmp_path):
    assert shutil.which(CHROMIUM) and shutil.which(DRIVER), \
        "chromium missing: run scripts/install-deps.sh --test"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--ignore-certificate-errors", "--no-first-run", "--disable-background-networking",
              "--disable-extensions", "--window-size=1200,900",
              "--user-data-dir=%s" % (tmp_path / "profile")):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    drv.set_page_load_timeout(30 * SLOW)
    yield drv
    drv.quit()


def wait_for(drv, fn, what, timeout=15):
    deadline = time.time() + timeout * SLOW
    while time.time() < deadline:
        v = fn(drv)
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out waiting for %s; page: %s" % (what, drv.page_source[:800]))


def test_enrol_sign_in_and_overview(make_server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    srv, tokens = console_server(make_server, (("li.na", "auditor"),))
    drv = browser
    drv.get(srv.base_url + "/console/")
    assert drv.find_element(By.TAG_NAME, "h1").text == "发票服务控制台"  # Chinese first
    drv.find_element(By.ID, "user").send_keys("li.na")
    drv.find_element(By.ID, "password").send_keys(PASSWORD)
    drv.find_element(By.ID, "enrol").send_keys(tokens["li.na"])
    drv.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    wait_for(drv, lambda d: d.find_element(By.ID, "enrolled").is_displayed(), "the enrolment")
    assert wait_for(drv, lambda d: d.execute_script(
        "return document.getElementById('qr').naturalWidth"), "the QR code image") > 100
    seed = parse_qs(urlparse(drv.find_element(By.ID, "uri").text).query)["secret"][0]
    assert len(drv.find_elements(By.CSS_SELECTOR, "#codes li")) == 8

    code, _ = fresh_code(seed, [])
    drv.find_element(By.ID, "totp").send_keys(code)
    drv.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    wait_for(drv, lambda d: d.current_url.endswith("/console/overview.html"), "the overview")
    wait_for(drv, lambda d: "li.na" in d.find_element(By.ID, "who").text, "who is signed in")
    wait_for(drv, lambda d: d.find_elements(By.CSS_SELECTOR, "#checks li"), "the checks")
    assert wait_for(drv, lambda d: d.execute_script(
        "return typeof Chart !== 'undefined' && !!Chart.getChart("
        "document.getElementById('chart'))"), "the chart")
    drv.save_screenshot(str(tmp_path / "overview-zh.png"))
    drv.find_element(By.ID, "lang").click()
    assert drv.find_element(By.TAG_NAME, "h1").text == "Overview"
    # the page's own CSP let nothing inline run and loaded no other origin
    try:
        logs = drv.get_log("browser")
    except Exception:  # a driver without the log endpoint: nothing to read
        logs = []
    assert not [e for e in logs if "Content Security Policy" in e.get("message", "")], logs
