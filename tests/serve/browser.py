"""Helpers of the browser tests: a uvicorn server in a thread on a free loopback port, headless Chromium."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from pathlib import Path

CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
                 if Path(p).is_file()), None)
CHROMEDRIVER = shutil.which("chromedriver") or next(
    (p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver") if Path(p).is_file()), None)


def browser_missing() -> str | None:
    """Why no browser test can run here (``None`` when Chromium, chromedriver and Selenium are there)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements/serve.txt)"
    if CHROMIUM is None or CHROMEDRIVER is None:
        return ("Debian's chromium and chromium-driver are not installed (scripts/setup.sh installs them from "
                "requirements/serve-apt.txt)")
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(app):
    """Serve ``app`` with uvicorn on ``127.0.0.1:<free port>`` in a thread; yields the base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    t0 = time.time()
    while not server.started:
        if not thread.is_alive() or time.time() - t0 > 20:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def chromium(fake_audio: Path | None = None, width: int = 1280, height: int = 900):
    """A headless Chromium driven by Selenium through Debian's chromedriver (nothing is downloaded).

    ``fake_audio``: a wav file the browser's microphone plays (Chromium's fake capture device).
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              f"--window-size={width},{height}", "--use-fake-ui-for-media-stream",
              "--autoplay-policy=no-user-gesture-required", "--disable-extensions", "--no-first-run"):
        opts.add_argument(a)
    if fake_audio is not None:
        opts.add_argument("--use-fake-device-for-media-stream")
        opts.add_argument(f"--use-file-for-fake-audio-capture={fake_audio}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
