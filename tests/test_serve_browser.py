"""The page in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium) searches "Star Wars", gives it 5 stars and sees
recommendations appear, once with the mouse on a wide window and once with the keyboard alone
on a phone-sized one.

The model is trained on the real ml-100k (its titles are what the page shows), so these tests
are skipped where the release is absent, as the other real-data tests are, and where Chromium
is not installed (``.ci/run`` installs it). Each test saves a screenshot under pytest's
temporary folder; with ``ALSMF_SCREENSHOT=PATH`` the wide one is also written to PATH, which
is how the README's ``docs/serve.png`` is made:

    ALSMF_SCREENSHOT=docs/serve.png python -m pytest tests/test_serve_browser.py
"""

import base64
import os
import re
import shutil
from pathlib import Path

import pytest

from alsmf.serve.app import create_app
from alsmf.serve.model_holder import ModelHolder
from tests.cli_helpers import run
from tests.serve_helpers import running

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SCREENSHOT_VARIABLE = "ALSMF_SCREENSHOT"
WAIT_SECONDS = 30

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Chromium and its driver are not installed (apt-get install chromium "
           "chromium-driver; .ci/run installs them)")


@pytest.fixture(scope="module")
def base_url(ml100k_dir, tmp_path_factory):
    """The service over a small model of the real ml-100k, titles included."""
    out = tmp_path_factory.mktemp("ml100k-serve")
    trained = run("train", "--data", ml100k_dir, "-k", 16, "-n", 5, "-o", out)
    assert trained.exit_code == 0, trained.output
    with running(create_app(ModelHolder(out / "model.npz"))) as base:
        yield base


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium through Debian's chromedriver; Selenium Manager is never asked
    for a driver or a browser (the driver's path is given, and it is told to stay offline)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER),
                                  options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, condition, message):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_SECONDS).until(lambda _: condition(), message)


def items(driver, list_id):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, f"#{list_id} > li")


def save_screenshot(driver, path: Path) -> None:
    """The whole page as a PNG, beyond the window's height (Chrome's DevTools protocol)."""
    driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0);")
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 10_000


def check_recommendations(driver):
    """Recommendations appeared: titles, genres, predicted ratings and reasons, and none of
    them is the rated film."""
    recommended = wait_for(driver, lambda: len(items(driver, "recs")) >= 5 and items(
        driver, "recs"), "no recommendations appeared")
    for row in recommended:
        text = row.text
        assert "Star Wars (1977)" != row.get_attribute("data-item")
        assert re.search(r"predicted \d\.\d ★", text), text
        assert re.search(r"Because you rated Star Wars \(1977\) \(5★, [+-]\d\.\d\d\)", text), text
    assert all(row.get_attribute("data-item") != "50" for row in recommended)
    assert "Star Wars (1977)" in items(driver, "rated")[0].text
    return recommended


def test_search_rate_and_see_recommendations(base_url, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.set_window_size(1280, 900)
    browser.get(base_url)
    wait_for(browser, lambda: "titles" in browser.find_element(By.ID, "model-line").text,
             "the page did not load the model's description")
    assert not browser.find_element(By.ID, "key-form").is_displayed()  # no key is needed
    browser.find_element(By.ID, "search").send_keys("Star Wars", Keys.ENTER)
    found = wait_for(browser, lambda: [row for row in items(browser, "results")
                                       if row.get_attribute("data-item") == "50"],
                     "Star Wars (1977) is not among the search results")
    found[0].find_element(By.CSS_SELECTOR, "label[for='stars-results-50-5']").click()
    recommended = check_recommendations(browser)
    assert browser.execute_script("return JSON.parse(localStorage.getItem('alsmf-ratings'))") \
        == [[50, {"item": 50, "title": "Star Wars (1977)",
                  "genres": ["Action", "Adventure", "Romance", "Sci-Fi", "War"], "rating": 5}]]
    first = recommended[0].find_element(By.CSS_SELECTOR, "button.quiet").text
    assert first == "More like this"
    recommended[0].find_element(By.CSS_SELECTOR, "button.quiet").click()
    wait_for(browser, lambda: len(items(browser, "similar")) == 10, "no similar items")
    assert browser.find_element(By.ID, "similar-heading").text.startswith("More like ")
    save_screenshot(browser, tmp_path / "serve.png")
    if os.environ.get(SCREENSHOT_VARIABLE):
        save_screenshot(browser, Path(os.environ[SCREENSHOT_VARIABLE]))


def test_keyboard_only_on_a_narrow_screen(base_url, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.set_window_size(390, 844)
    browser.get(base_url)
    wait_for(browser, lambda: "titles" in browser.find_element(By.ID, "model-line").text,
             "the page did not load")
    keys = ActionChains(browser)

    def focused():
        return browser.switch_to.active_element

    def tab_until(condition, most=40):
        for _ in range(most):
            keys.send_keys(Keys.TAB).perform()
            if condition(focused()):
                return focused()
        raise AssertionError("Tab never reached the element")

    tab_until(lambda node: node.get_attribute("id") == "search")
    keys.send_keys("Star Wars", Keys.ENTER).perform()
    wait_for(browser, lambda: any(row.get_attribute("data-item") == "50"
                                  for row in items(browser, "results")), "no search results")
    star = tab_until(lambda node: node.get_attribute("data-item") == "50"
                     and node.get_attribute("type") == "radio")
    assert star.get_attribute("value") == "1"
    keys.send_keys(Keys.SPACE).perform()  # 1 star, then the arrow keys move it up to 5
    for _ in range(4):
        keys.send_keys(Keys.ARROW_RIGHT).perform()
    assert focused().get_attribute("value") == "5" and focused().is_selected()
    check_recommendations(browser)
    more = tab_until(lambda node: node.text == "More like this")
    assert "Star Wars" in more.get_attribute("aria-label")
    keys.send_keys(Keys.ENTER).perform()
    wait_for(browser, lambda: focused().get_attribute("id") == "similar-heading",
             "'More like this' did not move the focus to its list")
    wait_for(browser, lambda: len(items(browser, "similar")) == 10, "no similar items")
    # one column, nothing wider than the screen
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth")
    search = browser.find_element(By.ID, "search-heading").rect
    recs = browser.find_element(By.ID, "recs-heading").rect
    assert recs["x"] == search["x"] and recs["y"] > search["y"]
    save_screenshot(browser, tmp_path / "serve-narrow.png")
