"""End to end: scripts/replay.py serves the page, headless Chromium (Playwright) browses it.

Needs Debian's ``chromium`` (``apt-get install chromium``) and the ``playwright`` Python package
(``pip install playwright``; its own browser download is not used). Skips, saying which is
missing, otherwise; under ``CI=true`` it fails instead (this is the viewer's only XSS check). A screenshot of an episode is saved to ``tests/artifacts/``.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ci_required import import_or_skip, skip_or_fail
from graph_builders import vp_id
from test_replay_data import make_replay_root

CHROMIUM = os.environ.get("CLIPVIL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
REPO = Path(__file__).resolve().parents[1]
#: An instruction that would run script if the page inserted it as HTML.
HOSTILE = 'walk <img src=x onerror="window.__pwned=1"> to <b>the</b> hall'


@pytest.fixture(scope="module")
def browser():
    sync_api = import_or_skip("playwright.sync_api", "the playwright Python package is not installed "
                              "(pip install playwright; the browser comes from Debian's chromium)")
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set CLIPVIL_CHROMIUM)")
    with sync_api.sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as e:  # e.g. missing shared libraries in a container
            skip_or_fail(f"Chromium at {CHROMIUM} does not start: {e}")
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The replay data root with one extra episode whose instruction holds HTML."""
    tmp = tmp_path_factory.mktemp("replay_browser")
    root, traj = make_replay_root(tmp)
    split = root / "R2R" / "R2R_train.json"
    records = json.loads(split.read_text())
    records.append(dict(distance=3.0, scan="tinyScan0001", path_id=9, heading=0.0, path=[vp_id("A"), vp_id("B")],
                        instructions=[HOSTILE]))
    split.write_text(json.dumps(records))
    runs = json.loads(traj.read_text()) + [{"instr_id": "9_0", "trajectory": [vp_id("A"), vp_id("B")]}]
    traj.write_text(json.dumps(runs))
    return root, traj


def wait_for(page, js: str, timeout: float = 10.0):
    """Poll a JS expression with page.evaluate (the page's CSP forbids eval-based waits)."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(f"() => {js}")
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {js}")
        time.sleep(0.05)


def check_episode_page(page):
    """Click 1_0, step through it with keys and buttons, play it; check what is shown."""
    page.click("button[data-key='1_0']")  # already shown: the click reloads it, and then it is at step 1
    wait_for(page, "document.body.dataset.loading === '0'")
    assert page.inner_text("#step-label") == "Step 1 / 3"
    assert page.inner_text("#episode-title") == "1_0"
    assert page.inner_text(".tok.attended") == "left"  # attention row 0 peaks on the last token
    assert page.inner_text("#candidates tr.chosen td:nth-child(2)") == vp_id("B")
    assert page.get_attribute("#current-marker", "data-viewpoint") == vp_id("A")
    page.keyboard.press("ArrowRight")
    assert page.inner_text("#step-label") == "Step 2 / 3"
    assert page.inner_text(".tok.attended") == "end"
    assert page.inner_text("#candidates tr.chosen td:nth-child(2)") == vp_id("C")
    assert page.get_attribute("#current-marker", "data-viewpoint") == vp_id("B")
    assert len(page.get_attribute("#progress-path", "points").split()) == 2
    assert page.locator("#view-markers .marker.chosen").count() == 1  # the chosen candidate is in view
    wait_for(page, "document.getElementById('view').complete && document.getElementById('view').naturalWidth === 320")
    wait_for(page, "document.getElementById('pano').complete && document.getElementById('pano').naturalWidth === 768")
    assert page.get_attribute("#view", "src").endswith("view_000.png")
    page.keyboard.press("End")
    assert page.inner_text("#step-label") == "Step 3 / 3"
    assert page.inner_text("#candidates tr.chosen td:nth-child(2)") == "STOP"
    assert page.inner_text("#metrics tr[data-metric='success'] td") == "yes"
    page.keyboard.press("ArrowLeft")
    assert page.inner_text("#step-label") == "Step 2 / 3"
    page.click("#first")
    assert page.inner_text("#step-label") == "Step 1 / 3"
    page.select_option("#speed", "300")
    page.keyboard.press(" ")  # play the animation to the end
    wait_for(page, "document.getElementById('step-label').textContent === 'Step 3 / 3'", 5)
    wait_for(page, "document.getElementById('play').textContent === 'play'", 5)  # stops by itself


@contextlib.contextmanager
def replay_server(site):
    """Run scripts/replay.py on ``site`` (port 0); yields (its URL, the first line it prints)."""
    root, traj = site
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "replay.py"), "--data", str(root / "R2R" / "R2R_train.json"),
         "--connectivity", str(root / "connectivity"), "--trajectories", str(traj),
         "--scans-dir", str(root / "scans"), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    try:
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert m, f"the server did not announce its URL: {line!r}"
        yield m.group(0), line
    finally:
        proc.terminate()
        proc.wait(10)


def test_served_page(browser, site):
    with replay_server(site) as (url, line):
        page = browser.new_page(viewport={"width": 1400, "height": 1050})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        assert f"{url}#1_0" in line  # the deep link the server announces
        page.goto(url)
        wait_for(page, "document.body.dataset.ready === '1'")
        assert page.inner_text("#list-count") == "10 of 10 episodes"
        # the page opens on the first episode, not on a blank page, and the URL names it
        assert page.inner_text("#episode-title") == "1_0" and page.is_hidden("#placeholder")
        assert page.inner_text("#step-label") == "Step 1 / 3" and page.url.endswith("#1_0")
        assert page.locator(".episode-item.selected").get_attribute("data-key") == "1_0"
        # search by instr_id, by outcome and by navigation error
        page.fill("#search", "2_")
        assert page.locator(".episode-item").count() == 3
        page.fill("#search", "")
        page.select_option("#filter-success", "failure")
        assert [t.strip() for t in page.locator(".episode-item .iid").all_inner_texts()] == ["2_0"]
        page.select_option("#filter-success", "all")
        page.fill("#ne-min", "5")
        assert page.locator(".episode-item").count() == 1
        page.fill("#ne-min", "")
        check_episode_page(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.keyboard.press("Home")
        page.keyboard.press("ArrowRight")
        wait_for(page, "document.getElementById('view').complete && document.getElementById('view').naturalWidth === 320")
        shot = ARTIFACTS / "replay_episode.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        # an instruction holding HTML is shown as text, and nothing runs
        page.click("button[data-key='9_0']")
        wait_for(page, "document.getElementById('episode-title').textContent === '9_0'")
        assert page.inner_text("#instruction") == HOSTILE
        assert page.locator("#instruction img, #instruction b").count() == 0
        assert page.evaluate("() => window.__pwned") is None
        # a deep link opens its episode; one naming no episode says so and opens the first
        page.goto("about:blank")  # a fresh load each time, not an in-page hash change
        page.goto(url + "#2_0")
        wait_for(page, "document.body.dataset.ready === '1'")
        assert page.inner_text("#episode-title") == "2_0" and page.is_hidden("#notice")
        page.goto("about:blank")
        page.goto(url + "#no_such_episode")
        wait_for(page, "document.body.dataset.ready === '1'")
        assert page.inner_text("#episode-title") == "1_0"
        assert "no_such_episode" in page.inner_text("#notice") and "showing the first episode" in page.inner_text("#notice")
        assert errors == []
        # another site cannot read the data by including it as a script
        page.goto("about:blank")
        outcome = page.evaluate("""(src) => new Promise((done) => {
            const s = document.createElement("script");
            s.src = src; s.onload = () => done("loaded"); s.onerror = () => done("refused");
            document.head.appendChild(s);
        })""", url + "data/index.json")
        assert outcome == "refused"
        page.close()


def test_a_slow_episode_answer_does_not_replace_the_one_picked_after_it(browser, site):
    """Click 2_0, then 1_0 while 2_0 is still loading, step on in 1_0; 2_0's late answer changes nothing."""
    with replay_server(site) as (url, _):
        page = browser.new_page(viewport={"width": 1400, "height": 1050})
        page.goto(url)
        wait_for(page, "document.body.dataset.ready === '1' && document.body.dataset.loading === '0'")
        held = []
        page.route("**/data/episodes/2_0.json", lambda route: held.append(route))  # answered later, by hand
        page.click("button[data-key='2_0']")
        wait_for(page, "document.body.dataset.loading === '1'")
        page.click("button[data-key='1_0']")
        wait_for(page, "document.body.dataset.loading === '0' && document.getElementById('episode-title').textContent === '1_0'")
        page.keyboard.press("ArrowRight")
        assert page.inner_text("#step-label") == "Step 2 / 3"
        assert len(held) == 1
        held[0].continue_()  # 2_0's answer arrives now
        wait_for(page, "performance.getEntriesByType('resource').some((e) => e.name.endsWith('/2_0.json') && e.responseEnd > 0)")
        page.wait_for_timeout(200)
        assert page.inner_text("#episode-title") == "1_0"
        assert page.inner_text("#step-label") == "Step 2 / 3"
        assert page.url.endswith("#1_0")
        assert page.locator(".episode-item.selected").get_attribute("data-key") == "1_0"
        page.close()


def test_static_export_opens_without_a_server(browser, site, tmp_path):
    from scripts.replay import main

    root, traj = site
    out = tmp_path / "site"
    main(["--data", str(root / "R2R" / "R2R_train.json"), "--connectivity", str(root / "connectivity"),
          "--trajectories", str(traj), "--scans-dir", str(root / "scans"), "--export", str(out), "--episodes", "1_0", "2_0"])
    page = browser.new_page(viewport={"width": 1400, "height": 1050})
    page.goto((out / "index.html").as_uri())
    wait_for(page, "document.body.dataset.ready === '1'")
    assert page.inner_text("#list-count") == "2 of 2 episodes"
    assert page.inner_text("#episode-title") == "1_0"  # opens on the first episode
    check_episode_page(page)
    # a deep link opens the episode directly
    page.goto((out / "index.html").as_uri() + "#2_0")
    wait_for(page, "document.getElementById('episode-title').textContent === '2_0'")
    assert page.inner_text("#metrics tr[data-metric='success'] td") == "no"
    page.close()
