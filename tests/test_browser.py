"""The page in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`)
uploads a real P-ADSD patch and an ADSD frame to `lqer serve` on 127.0.0.1, and what it shows
must be what the API answers. `.ci/run` installs Chromium and requires this test to run."""

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from lqer.serve.app import Service, create_app

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    if os.environ.get("LQER_REQUIRE_BROWSER"):
        raise RuntimeError("LQER_REQUIRE_BROWSER is set but chromium or chromedriver is missing")
    pytest.skip("chromium and chromedriver are not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def server():
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(Service("lqer-padsd")), host="127.0.0.1", port=port,
                            log_level="warning")  # fmt: skip
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    for _ in range(200):
        if running.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1200,1500"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=DriverService(DRIVER), options=options)
    yield driver
    driver.quit()


def upload(browser, url, path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    WebDriverWait(browser, 30).until(seen.text_to_be_present_in_element((By.ID, "card-table"),
                                                                        "threshold"))  # fmt: skip
    browser.find_element(By.ID, "file").send_keys(str(path))
    WebDriverWait(browser, 120).until(
        lambda b: (
            b.find_element(By.ID, "status").text in ("done",)
            or "error" in b.find_element(By.ID, "status").get_attribute("class")
        )  # fmt: skip
    )
    assert browser.find_element(By.ID, "status").text == "done"
    return {k: browser.find_element(By.ID, k).text for k in ("prob", "decision", "boxes")}


def test_the_page_shows_what_the_api_answers(server, browser, datasets_dir, tmp_path):
    import httpx
    from selenium.webdriver.common.by import By

    shots = Path(os.environ.get("LQER_SCREENSHOTS", tmp_path))
    patch = sorted((datasets_dir / "P-ADSD/validation/positive").glob("*.png"))[0]
    frame = datasets_dir / "ADSD-sample/images/14_002_5_0016.bmp"
    shown = upload(browser, server, patch)
    api = httpx.post(f"{server}/api/predict", files={"file": patch.read_bytes()}, timeout=60)
    assert shown["prob"] == f"{api.json()['frames'][0]['prob_stenosis']:.3f}"
    assert shown["decision"] == api.json()["frames"][0]["label"].replace("_", " ")
    assert "colour bar" in browser.find_element(By.ID, "caption").text
    assert browser.save_screenshot(str(shots / "serve_patch.png"))
    shown = upload(browser, server, frame)
    scan = httpx.post(f"{server}/api/scan", files={"file": frame.read_bytes()}, timeout=120)
    boxes = scan.json()["boxes"]
    assert int(shown["boxes"]) == len(boxes) > 0
    assert shown["prob"] == f"{scan.json()['max_score']:.3f}"
    assert shown["decision"] == f"{len(boxes)} candidates to review"
    rows = browser.find_elements(By.CSS_SELECTOR, "#box-table tbody tr")
    scores = [row.find_elements(By.TAG_NAME, "td")[1].text for row in rows]
    assert scores == [f"{b['score']:.3f}" for b in boxes]  # each box with its score
    assert "each with its score" in browser.find_element(By.ID, "caption").text
    assert browser.find_element(By.ID, "limits").text.startswith("Limits: a patch classifier")
    for link in ("download-json", "download-csv"):
        assert browser.find_element(By.ID, link).get_attribute("href").startswith("blob:")
    assert "Not a medical device" in browser.page_source
    assert browser.save_screenshot(str(shots / "serve_frame.png"))
