"""`dialc review FILE --web` in a real headless Chromium: listing, keyboard decisions, an edit, a reload,
a second page deciding at the same time, conflicts, the token and the loopback-only address.

DIALC_SCREENSHOT=docs/review-page.png writes the README's screenshot (1000x700) as well."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from review_kit import DIALOGUE, IDS, TASKS, write_candidates

from dialc.review_web import ReviewServer
from dialc_runtime.data.review import read_review

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1000, "height": 700}

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ReviewServer]:
    served = ReviewServer(write_candidates(tmp_path / "review.jsonl"))
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    yield served
    served.shutdown()
    served.server_close()


def open_page(browser: Any, url: str) -> Any:
    """A page on the review URL with its clock paused: the page polls only when a test lets time run."""
    page = browser.new_page(viewport=VIEWPORT)
    page.clock.install(time=1_000_000)
    page.clock.pause_at(1_001_000)
    page.goto(url)
    page.locator("section.card").first.wait_for()
    return page


def card(page: Any, cid: str) -> Any:
    return page.locator(f'section.card[data-id="{cid}"]')


def decisions(server: ReviewServer) -> dict[str, str]:
    return {k: r["decision"] for k, r in read_review(server.review_path).items()}


def test_the_page_lists_candidates_with_task_operator_output_and_dialogue(browser: Any, server: ReviewServer,
                                                                       tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, server.url)
    expect(page.locator("section.card")).to_have_count(4)
    assert [c.get_attribute("data-id") for c in page.locator("section.card").all()] == IDS
    first = card(page, "extract~add_constraint1")
    for text in ("operator add_constraint", "of extract", TASKS["extract"]["instruction"],
                 "{ budget: int? [0..100000000]  district: str? (max 40) }", "d07 (rental)"):
        expect(first).to_contain_text(text)
    expect(first.locator("pre.dialogue")).to_be_hidden()
    first.locator("summary").click()
    expect(first.locator("pre.dialogue")).to_have_text(DIALOGUE["text"])
    expect(card(page, "reply#p1")).to_contain_text("text(max = 300)")
    expect(card(page, "reply#p1")).to_contain_text("none: set `context = SOURCE`")
    expect(page.locator("#count-pending")).to_have_text("4 pending")
    shot = page.screenshot(path=str(tmp_path / "review.png"))
    assert shot.startswith(b"\x89PNG") and len(shot) > 10_000  # a rendered page, not a blank one
    page.close()


def test_keyboard_decisions_an_edit_and_a_reload(browser: Any, server: ReviewServer) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, server.url)
    expect(card(page, IDS[0])).to_have_class("card current")
    page.keyboard.press("a")
    expect(card(page, IDS[0])).to_have_attribute("data-decision", "accept")
    expect(card(page, IDS[1])).to_have_class("card current")  # moved on to the next candidate
    page.keyboard.press("r")
    expect(card(page, IDS[1])).to_have_attribute("data-decision", "reject")
    page.keyboard.press("e")  # the paraphrase
    area = card(page, IDS[2]).locator("textarea")
    expect(area).to_be_focused()
    expect(area).to_have_value("Draft what the agent should say next.")  # the key itself is not typed in
    area.fill("Say what the agent should answer next, in two sentences.")
    page.keyboard.press("Control+Enter")
    expect(card(page, IDS[2])).to_contain_text("Say what the agent should answer next, in two sentences.")
    page.keyboard.press("e")  # an edit abandoned with Esc changes nothing
    card(page, IDS[3]).locator("textarea").fill("Something else.")
    page.keyboard.press("Escape")
    expect(card(page, IDS[3]).locator("textarea")).to_have_count(0)
    rows = read_review(server.review_path)  # every decision already in the file
    assert [rows[i]["decision"] for i in IDS] == ["accept", "reject", "accept", "pending"]
    assert rows[IDS[2]]["instruction"] == "Say what the agent should answer next, in two sentences."
    assert rows[IDS[3]]["instruction"].startswith("Write the agent's next reply, proposing")
    page.reload()
    for cid, decision in zip(IDS, ["accept", "reject", "accept", "pending"], strict=True):
        expect(card(page, cid)).to_have_attribute("data-decision", decision)
    expect(card(page, IDS[2]).locator(".instruction")).to_have_text(
        "Say what the agent should answer next, in two sentences.")
    expect(page.locator("#count-pending")).to_have_text("1 pending")
    page.keyboard.press("k")
    page.keyboard.press("u")  # back to pending
    expect(card(page, IDS[0])).to_have_attribute("data-decision", "pending")
    assert decisions(server)[IDS[0]] == "pending"
    page.close()


def test_two_pages_decide_at_once_and_neither_loses_the_other(browser: Any, server: ReviewServer) -> None:
    from playwright.sync_api import expect

    one, two = open_page(browser, server.url), open_page(browser, server.url)
    one.keyboard.press("a")  # IDS[0] on the first page
    expect(card(one, IDS[0])).to_have_attribute("data-decision", "accept")
    for key in ("j", "j", "r"):  # IDS[2] on the second, which has not seen the first page's decision
        two.keyboard.press(key)
    expect(card(two, IDS[2])).to_have_attribute("data-decision", "reject")
    expect(card(two, IDS[0])).to_have_attribute("data-decision", "accept")  # state refreshed after its save
    assert decisions(server) == {IDS[0]: "accept", IDS[1]: "pending", IDS[2]: "reject", IDS[3]: "pending"}
    one.keyboard.press("j")
    expect(card(one, IDS[2])).to_have_attribute("data-decision", "pending")  # stale: no poll yet
    one.keyboard.press("a")  # on a candidate the other page rejected meanwhile: a conflict, nothing lost
    expect(card(one, IDS[2]).locator(".conflict")).to_contain_text("Changed elsewhere meanwhile: now reject")
    expect(card(one, IDS[2])).to_have_attribute("data-decision", "reject")
    assert decisions(server)[IDS[2]] == "reject"
    one.keyboard.press("a")  # seen now: a second press applies it
    expect(card(one, IDS[2])).to_have_attribute("data-decision", "accept")
    expect(card(one, IDS[2]).locator(".conflict")).to_have_count(0)
    two.clock.run_for(3500)  # the second page polls and shows it
    expect(card(two, IDS[2])).to_have_attribute("data-decision", "accept")
    burst = """ids => Promise.all(ids.map(id => fetch("api/decide", {method: "POST",
        headers: {"X-Dialc-Token": new URLSearchParams(location.search).get("token")},
        body: JSON.stringify({id, decision: "reject"})}).then(r => r.status)))"""
    one.evaluate(f"window.sent = ({burst})({json.dumps([IDS[1]])})")  # both in flight together
    two.evaluate(f"window.sent = ({burst})({json.dumps([IDS[3]])})")
    assert one.evaluate("window.sent") == [200] and two.evaluate("window.sent") == [200]
    assert decisions(server) == {IDS[0]: "accept", IDS[1]: "reject", IDS[2]: "accept", IDS[3]: "reject"}
    one.close()
    two.close()


def _status(url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None) -> int:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_wrong_or_missing_token_gets_403(browser: Any, server: ReviewServer) -> None:
    assert server.socket.getsockname()[0] == "127.0.0.1" and server.url.startswith("http://127.0.0.1:")
    base = server.url.split("?")[0]
    wrong = base + "?token=" + "x" * len(server.token)
    assert _status(server.url) == 200
    assert _status(wrong) == 403 and _status(base) == 403
    assert _status(base + "api/state", headers={"X-Dialc-Token": "nope"}) == 403
    body = json.dumps({"id": IDS[0], "decision": "accept"}).encode()
    assert _status(base + "api/decide", "POST", body=body) == 403
    assert decisions(server)[IDS[0]] == "pending"
    assert _status(base + "api/state", headers={"X-Dialc-Token": server.token}) == 200
    page = browser.new_page()
    assert page.goto(wrong).status == 403
    page.close()


def _outside_address() -> str | None:
    """An address of this machine that is not loopback, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_the_command_binds_loopback_prints_the_url_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    path = write_candidates(tmp_path / "review.jsonl")
    proc = subprocess.Popen([sys.executable, "-m", "dialc", "review", str(path), "--web", "--no-open"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert f"Reviewing {path} at http://127.0.0.1:" in line, (line, proc.stderr and proc.stderr.read())
        url = line.split(" at ", 1)[1].strip()
        port = int(url.split(":")[2].split("/")[0])
        assert _status(url) == 200
        outside = _outside_address()
        if outside is not None:  # listening on loopback only: not reachable on the machine's own address
            with pytest.raises(OSError), socket.create_connection((outside, port), timeout=2):
                pass
        token = url.split("token=")[1]
        for cid in IDS:
            body = json.dumps({"id": cid, "decision": "accept"}).encode()
            assert _status(url.split("?")[0] + "api/decide", "POST", {"X-Dialc-Token": token}, body) == 200
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "4 decided, 0 pending" in err  # nothing pending: the gate is open


def test_screenshot_of_the_page(browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's picture: a decision of each kind, a dialogue unfolded, the cursor on a pending one."""
    from playwright.sync_api import expect

    monkeypatch.chdir(tmp_path)  # the page shows the path as typed: reviews/evolved.jsonl
    served = ReviewServer(write_candidates(Path("reviews/evolved.jsonl")))
    threading.Thread(target=served.serve_forever, daemon=True).start()
    page = open_page(browser, served.url)
    card(page, IDS[0]).locator("summary").click()
    page.keyboard.press("a")
    expect(card(page, IDS[0])).to_have_attribute("data-decision", "accept")
    page.keyboard.press("r")
    expect(card(page, IDS[1])).to_have_attribute("data-decision", "reject")
    page.keyboard.press("j")
    expect(card(page, IDS[3])).to_have_class("card current")
    page.evaluate("window.scrollTo(0, 0)")
    target = os.environ.get("DIALC_SCREENSHOT")
    path = ROOT / target if target else tmp_path / "review-page.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    assert path.read_bytes().startswith(b"\x89PNG")
    page.close()
    served.shutdown()
    served.server_close()
