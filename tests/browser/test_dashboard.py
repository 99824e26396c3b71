"""The dashboard in a real browser (Debian Chromium through Selenium) against a real
``ign serve``: every page loads with no console error at laptop and phone sizes, forms submit
and show answers, filters change what is shown, the session needs a read token, and a read
token cannot write from the browser."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.conftest import LAPTOP, PHONE, Dashboard, start_chromium, stop_chromium

PAGES = {
    "/ui": "Overview",
    "/ui/recommendations?environment=production&resources=project": "Recommendations",
    "/ui/predict?environment=production&strategy=blue_green&resources=project": "Predict",
    "/ui/patterns": "Patterns",
    "/ui/rollbacks?environment=production": "Rollback scenarios",
    "/ui/adaptations?source=staging&target=production": "Adaptations",
    "/ui/model": "Model",
}


def _sign_in(driver: Any, dashboard: Dashboard, token: str = "viewer") -> None:
    driver.get(f"{dashboard.url}/ui")
    if driver.find_elements(By.ID, "token"):
        driver.find_element(By.ID, "token").send_keys(dashboard.tokens[token])
        _submit(driver, "form.signin button")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Overview"


def _submit(driver: Any, css: str) -> None:
    """Click a form's button and wait for the answer page (a click does not wait)."""
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, css).click()
    WebDriverWait(driver, 120).until(staleness_of(page))


def _severe(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _top_pattern(dashboard: Dashboard) -> str:
    listed = httpx.get(
        f"{dashboard.url}/v1/patterns",
        headers={"Authorization": f"Bearer {dashboard.tokens['viewer']}"},
        timeout=120,
    ).json()
    return str(listed[0]["pattern_id"])


@pytest.mark.parametrize("size", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_every_page_loads_without_console_errors(
    dashboard: Dashboard, size: tuple[int, int]
) -> None:
    driver = start_chromium(size)
    try:
        _sign_in(driver, dashboard)
        pages = {**PAGES, f"/ui/patterns/{quote(_top_pattern(dashboard))}": None}
        driver.get_log("browser")  # drop the sign-in's entries
        for path, heading in pages.items():
            driver.get(f"{dashboard.url}{path}")
            h1 = driver.find_element(By.TAG_NAME, "h1").text
            assert h1 == heading if heading else h1, path
            assert not driver.find_elements(By.CSS_SELECTOR, ".error"), path
            assert _severe(driver) == [], path
            # readable at this width: nothing but the tables' own scrollers is wider
            overflow = driver.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, f"{path}: {overflow}px wider than the window"
            # every form control has a label
            unlabelled = driver.execute_script(
                "return [...document.querySelectorAll('input:not([type=hidden]),select,"
                "textarea')].filter(e => !e.labels || e.labels.length === 0).map(e => e.name)"
            )
            assert unlabelled == [], path
    finally:
        stop_chromium(driver)


def test_pages_need_a_read_token(dashboard: Dashboard) -> None:
    driver = start_chromium(LAPTOP)
    try:
        driver.get(f"{dashboard.url}/ui/patterns")
        assert driver.find_element(By.TAG_NAME, "h1").text == "Sign in"
        label = driver.find_element(By.CSS_SELECTOR, "label[for=token]")
        assert label.text == "API token"
        driver.find_element(By.ID, "token").send_keys("dl_not-a-token")
        _submit(driver, "form.signin button")
        assert "unknown, revoked" in driver.find_element(By.CSS_SELECTOR, ".error").text
        driver.find_element(By.ID, "token").send_keys(dashboard.tokens["viewer"])
        _submit(driver, "form.signin button")
        assert driver.find_element(By.TAG_NAME, "h1").text == "Patterns"  # back where it was
        cookie = driver.get_cookie("deploylearn_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert driver.execute_script("return document.cookie") == ""  # scripts cannot read it
        _submit(driver, "form.signout button")
        driver.get(f"{dashboard.url}/ui/model")
        assert driver.find_element(By.TAG_NAME, "h1").text == "Sign in"
    finally:
        stop_chromium(driver)


def test_read_token_cannot_write_from_the_browser(browser: Any, dashboard: Dashboard) -> None:
    _sign_in(browser, dashboard)
    record = {"execution_id": "browser-1", "target_environment": "production"}
    post = """
        const [url, token, body, done] = arguments;
        const headers = {"Content-Type": "application/json"};
        if (token) headers["Authorization"] = "Bearer " + token;
        fetch(url, {method: "POST", credentials: "include", headers, body})
          .then(r => r.text().then(t => done([r.status, t])), e => done([0, String(e)]));
    """
    url = f"{dashboard.url}/v1/executions"
    body = json.dumps(record)
    # the session cookie does not authorize the API (and its path is /ui anyway)
    status, _ = browser.execute_async_script(post, url, None, body)
    assert status == 401
    # the read token itself, presented as the API wants it, lacks the write scope
    status, text = browser.execute_async_script(post, url, dashboard.tokens["viewer"], body)
    assert status == 403 and "write" in text
    found = httpx.get(
        f"{dashboard.url}/v1/patterns",
        headers={"Authorization": f"Bearer {dashboard.tokens['viewer']}"},
        timeout=120,
    )
    assert found.status_code == 200
    assert browser.execute_script("return document.cookie") == ""


def test_predict_form_shows_the_gate_and_risk_factors(browser: Any, dashboard: Dashboard) -> None:
    _sign_in(browser, dashboard)
    browser.get(f"{dashboard.url}/ui/predict")
    Select(browser.find_element(By.ID, "f-environment")).select_by_value("production")
    Select(browser.find_element(By.ID, "f-strategy")).select_by_value("blue_green")
    for resource in ("project", "database"):
        browser.find_element(By.CSS_SELECTOR, f"input[name=resources][value={resource}]").click()
    config = browser.find_element(By.ID, "f-configuration")
    config.send_keys('{"backup_enabled": false}')
    threshold = browser.find_element(By.ID, "f-fail-below")
    threshold.clear()
    threshold.send_keys("0.99")
    _submit(browser, "form.filters button")
    assert browser.find_element(By.ID, "gate-verdict").text == "failed"  # nothing is 99 %
    assert "P(success)" in browser.find_element(By.ID, "answer").text
    assert browser.find_elements(By.CSS_SELECTOR, "#risk-factors tbody tr")
    assert "fail_below=0.99" in browser.current_url  # a GET form: the answer is a link
    # the same plan with a threshold of 0 passes
    browser.get(browser.current_url.replace("fail_below=0.99", "fail_below=0"))
    assert browser.find_element(By.ID, "gate-verdict").text == "passed"
    # bad configuration JSON is refused, naming the field
    browser.get(f"{dashboard.url}/ui/predict?environment=production&strategy=blue_green"
                "&resources=project&configuration=%7Bnope")
    assert "configuration" in browser.find_element(By.CSS_SELECTOR, ".error").text
    assert _severe(browser) == [] or all("422" in e["message"] for e in _severe(browser))


def test_recommendations_form_ranks_patterns_with_reasons(
    browser: Any, dashboard: Dashboard
) -> None:
    _sign_in(browser, dashboard)
    browser.get(f"{dashboard.url}/ui/recommendations")
    Select(browser.find_element(By.ID, "f-environment")).select_by_value("production")
    browser.find_element(By.CSS_SELECTOR, "input[name=resources][value=project]").click()
    _submit(browser, "form.filters button")
    cards = browser.find_elements(By.CSS_SELECTOR, "#answer ol.cards > li")
    assert 1 <= len(cards) <= 5
    assert "P(success)" in cards[0].text and "Why" in cards[0].text
    assert cards[0].find_elements(By.CSS_SELECTOR, "ul li")  # reasons listed
    assert browser.find_element(By.CSS_SELECTOR, "#answer svg.chart title").get_attribute(
        "textContent"
    ).startswith("P(success)")


def test_filters_change_what_is_shown(browser: Any, dashboard: Dashboard) -> None:
    _sign_in(browser, dashboard)
    browser.get(f"{dashboard.url}/ui")
    everywhere = browser.find_element(By.CSS_SELECTOR, "p.note").text
    assert "across every environment" in everywhere
    assert browser.find_elements(By.ID, "env-trends")  # per-environment trends, unfiltered
    Select(browser.find_element(By.ID, "f-environment")).select_by_value("production")
    Select(browser.find_element(By.ID, "f-days")).select_by_value("90")
    _submit(browser, "form.filters button")
    narrowed = browser.find_element(By.CSS_SELECTOR, "p.note").text
    assert "in production" in narrowed and narrowed != everywhere
    assert "environment=production" in browser.current_url and "days=90" in browser.current_url
    assert not browser.find_elements(By.ID, "env-trends")
    # patterns: an environment, then a gateway of it, leave fewer runs
    browser.get(f"{dashboard.url}/ui/patterns?days=365")
    every = _runs(browser)
    browser.get(f"{dashboard.url}/ui/patterns?days=365&environment=production")
    production = _runs(browser)
    gateway = Select(browser.find_element(By.ID, "f-environment"))
    assert gateway.first_selected_option.get_attribute("value") == "production"
    assert 0 < production < every
    browser.get(f"{dashboard.url}/ui/patterns?days=365&environment=production&resources=database")
    assert _runs(browser) < production
    browser.get(f"{dashboard.url}/ui/patterns?days=7&environment=production")
    assert _runs(browser) < production


def _runs(driver: Any) -> int:
    cells = driver.find_elements(By.CSS_SELECTOR, "#patterns-table tbody tr td:nth-child(3)")
    return sum(int(c.text.replace(",", "")) for c in cells)


def test_keyboard_reaches_the_skip_link_and_pages(browser: Any, dashboard: Dashboard) -> None:
    _sign_in(browser, dashboard)
    browser.get(f"{dashboard.url}/ui/model")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    active = browser.switch_to.active_element
    assert active.text == "Skip to content"
    outline = browser.execute_script(
        "return getComputedStyle(document.activeElement).outlineStyle"
    )
    assert outline == "solid"  # focus is visible
    active.send_keys(Keys.ENTER)
    assert browser.execute_script("return location.hash") == "#main"
    assert "Holdout" in browser.find_element(By.ID, "main").text
    assert browser.find_element(By.CSS_SELECTOR, "#model-status dd").text.startswith(
        "success model v"
    )
    assert "None" not in browser.find_element(By.ID, "model-status").text
    calibration = browser.find_element(By.CSS_SELECTOR, "img[src='/ui/model/calibration.png']")
    assert browser.execute_script("return arguments[0].naturalWidth", calibration) > 0
