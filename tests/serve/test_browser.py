"""The live page in a real browser: headless Chromium (Debian's, driven by Selenium through chromedriver) loads
the page from a server on a free loopback port, uploads a synthetic speech clip, waits for the curves and checks
what the charts hold against the API's answer; a screenshot is written to the test's tmp dir."""

from __future__ import annotations

import json

import numpy as np
import pytest

from affectflow.serve import ServeSettings, create_app
from tests.serve.browser import browser_missing, chromium, running_server

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")


@pytest.fixture(scope="module")
def page(served, speech_clip):
    """(base URL, driver) with the app of ``served`` running; the fake microphone plays the speech clip."""
    with running_server(create_app(served, ServeSettings())) as url:
        driver = chromium(fake_audio=speech_clip)
        driver.set_page_load_timeout(20)
        try:
            yield url, driver
        finally:
            driver.quit()


def _state(driver) -> str:
    return driver.execute_script("return document.body.dataset.state")


def _wait_state(driver, states, timeout=20.0):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: _state(d) in states)
    return _state(driver)


def test_page_uploads_a_clip_and_draws_the_api_answer(page, speech_clip, tmp_path):
    import httpx
    from selenium.webdriver.common.by import By

    url, d = page
    d.get(url + "/")
    assert _wait_state(d, {"ready"}) == "ready"
    assert "egemaps" in d.find_element(By.ID, "run-info").text
    assert d.find_element(By.ID, "csv-link").get_attribute("aria-disabled") == "true"
    d.find_element(By.ID, "file").send_keys(str(speech_clip))
    d.find_element(By.ID, "predict-btn").click()
    assert _wait_state(d, {"done", "error"}) == "done", d.find_element(By.ID, "status").text
    d.save_screenshot(str(tmp_path / "page-file.png"))
    drawn = d.execute_script("return window.affectflow.drawn()")
    job = d.execute_script("return window.affectflow.jobId")

    # the API's answer for the same file, asked independently
    api = httpx.post(url + "/predict", files={"file": ("clip.wav", speech_clip.read_bytes())}, timeout=30).json()
    assert api["n_steps"] == 24 and len(drawn["time"]) == 24
    np.testing.assert_allclose(drawn["time"], api["time"])
    for t in ("arousal", "valence"):
        np.testing.assert_allclose(drawn[t], api[t], atol=1e-9)
    np.testing.assert_allclose(np.array(drawn["trajectory"]), np.c_[api["valence"], api["arousal"]], atol=1e-9)
    # the CSV link is the job's CSV
    href = d.find_element(By.ID, "csv-link").get_attribute("href")
    assert href.endswith(f"/jobs/{job}/result?format=csv")
    csv = httpx.get(href).text.splitlines()
    assert csv[0] == "time,arousal,valence" and len(csv) == 25
    assert (tmp_path / "page-file.png").stat().st_size > 10_000
    severe = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == [], severe


def test_page_shows_a_clear_error_for_bad_media(page, tmp_path):
    from selenium.webdriver.common.by import By

    url, d = page
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"this is not audio" * 20)
    d.get(url + "/")
    _wait_state(d, {"ready"})
    d.find_element(By.ID, "file").send_keys(str(bad))
    d.find_element(By.ID, "predict-btn").click()
    assert _wait_state(d, {"done", "error"}) == "error"
    status = d.find_element(By.ID, "status").text
    assert status.startswith("Error:") and "broken.wav" in status


def _needs_audio_streaming():
    try:
        from affectflow.streaming import AudioStreamPredictor  # noqa: F401
    except ImportError:
        pytest.skip("affectflow.streaming.AudioStreamPredictor is not available")


def test_playing_a_file_live_draws_each_streamed_step(page, short_clip, tmp_path):
    """The page decodes the file at 16 kHz, sends it over /stream as it plays, and draws each prediction: the
    curves end equal to the offline answer (the stream is causal and sample-identical)."""
    _needs_audio_streaming()
    import httpx
    from selenium.webdriver.common.by import By

    url, d = page
    d.get(url + "/")
    _wait_state(d, {"ready"})
    d.find_element(By.ID, "file").send_keys(str(short_clip))
    d.find_element(By.ID, "live-btn").click()
    assert _wait_state(d, {"streaming", "error"}) == "streaming"
    counts = []
    assert _wait_state(d, {"done", "error"}, timeout=25) == "done", d.find_element(By.ID, "status").text
    d.save_screenshot(str(tmp_path / "page-live.png"))
    drawn = d.execute_script("return window.affectflow.drawn()")
    received = d.execute_script("return window.affectflow.result")
    api = httpx.post(url + "/predict", files={"file": ("short.wav", short_clip.read_bytes())}, timeout=30).json()
    assert len(drawn["time"]) == received["n_steps"] == api["n_steps"] == 10, counts
    for t in ("arousal", "valence"):
        assert drawn[t] == received[t]
        np.testing.assert_allclose(drawn[t], api[t], atol=1e-4)
    assert d.find_element(By.ID, "csv-link").get_attribute("href").startswith("blob:")


def test_microphone_streams_and_draws_live(page):
    """Chromium's fake microphone plays the speech clip; predictions arrive and are drawn while it records."""
    _needs_audio_streaming()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, d = page
    d.get(url + "/")
    _wait_state(d, {"ready"})
    d.find_element(By.ID, "mic-btn").click()
    WebDriverWait(d, 20, poll_frequency=0.1).until(
        lambda d: _state(d) == "error" or len(d.execute_script("return window.affectflow.drawn()")["time"]) >= 2)
    assert _state(d) == "streaming", d.find_element(By.ID, "status").text
    d.find_element(By.ID, "mic-btn").click()  # stop: the server flushes the remaining steps
    assert _wait_state(d, {"done", "error"}) == "done", d.find_element(By.ID, "status").text
    drawn = d.execute_script("return window.affectflow.drawn()")
    received = d.execute_script("return window.affectflow.result")
    assert len(drawn["time"]) == received["n_steps"] >= 2
    assert drawn["time"] == [k / 2.0 for k in range(len(drawn["time"]))]
    assert all(np.isfinite(drawn["valence"])) and all(np.isfinite(drawn["arousal"]))
