"""The HTML report opened in a real browser, tried as a new user would: errors, repairs and a
proposal happen, `selfheal report --html` writes the page, and headless Chromium renders it
without fetching anything from the network."""

import html
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .support import SEED, fail_then_heal

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_TIMEOUT = 60
HOSTILE_TABLE = "<script>alert(document.title)</script>"  # no digits: signatures fold them

# Injected into a copy of the page only: measures what the browser drew and writes it down.
PROBE = """<script>
window.addEventListener("load", function () {
  function size(element) { var box = element.getBBox(); return [box.width, box.height]; }
  function groups(prefix) {
    return Array.from(document.querySelectorAll('g[id^="' + prefix + '"]'), function (g) {
      return [g.id].concat(size(g));
    });
  }
  var chart = document.querySelector("figure.chart svg");
  var probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify({
    chart: chart ? size(chart) : null,
    shown: chart ? [chart.getBoundingClientRect().width, chart.getBoundingClientRect().height] : null,
    series: groups("series-"), repairs: groups("repair-"),
    scripts: document.scripts.length, text: document.body.innerText,
    // Every request the page made, failed ones included.
    fetched: performance.getEntriesByType("resource").map(function (entry) { return entry.name; })
  });
  document.body.appendChild(probe);
});
</script>"""


# Chromium's own calls to its update, sign-in and clock services, which it makes whatever the
# page and despite --disable-background-networking and --disable-component-update.


class Listener:
    """A TCP port that records whoever connects: given to Chromium as its proxy, it sees every
    http(s) request, as "GET http://host/path" or "CONNECT host:443"."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.1)
        self.port = self.socket.getsockname()[1]
        self.requests: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.socket.accept()
            except TimeoutError:
                continue
            with conn:  # closed at once: the request fails instead of waiting for a reply
                conn.settimeout(2)
                try:
                    line = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
                except OSError as exc:
                    line = f"(connected, sent nothing: {exc})"
                if line:  # a preconnect that closes without a request names no host and fetches nothing
                    self.requests.append(line)

    def hosts(self) -> set[str]:
        return {re.sub(r"^\w+ (\w+://)?([^/:]*).*", r"\2", r) for r in self.requests}

    def close(self):
        self._stop.set()
        self._thread.join()
        self.socket.close()


@pytest.fixture
def browser(tmp_path):
    """Runs headless Chromium with every http(s) request routed to a listener."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: the HTML report is checked in a real browser; "
                    "install it with `bash scripts/setup.sh`")
    listener = Listener()

    def run(*args: str) -> str:
        result = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-background-networking", "--disable-component-update", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}", f"--proxy-server=http://127.0.0.1:{listener.port}",
             "--proxy-bypass-list=<-loopback>", *args],
            capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    run.listener = listener
    yield run
    listener.close()


def render(browser, page: Path) -> dict:
    """The probe's measurements of page as Chromium rendered it."""
    probed = page.with_name("probed.html")
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = browser("--window-size=1100,1400", "--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, f"the probe did not run; Chromium wrote:\n{dom[:2000]}"
    return json.loads(html.unescape(found.group(1)))


def write_report(db, page: Path, user: str | None = None) -> str:
    dsn = db.cluster.dsn(db.name, user) if user else db.cluster.dsn(db.name)
    result = subprocess.run([sys.executable, "-m", "selfheal.cli", "report", "--dsn", dsn, "--html", str(page)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def story(db):
    """Two bursts of errors with a pause between them, three repairs, errors left for review
    (one naming a hostile table) and one proposal waiting for approval."""
    db.admin.execute(SEED)
    app = db.connect()
    for statement in ["SELECT 1/0", f'SELECT * FROM "{HOSTILE_TABLE}"', "SELECT 1/0",
                      "SELECT recommendation_data FROM sessions"]:
        fail_then_heal(app, statement)
    time.sleep(2.5)  # a pause in traffic, which the chart must show as buckets without errors
    for statement in ["SELECT * FROM sessions WHERE service_type_id = 1",
                      "SELECT cp.package_name FROM credit_packages cp", "SELECT 1/0"]:
        fail_then_heal(app, statement)
    db.admin.execute("UPDATE selfheal.policy SET value = 'propose' WHERE name = 'add_column'")
    assert fail_then_heal(app, "SELECT biography FROM sessions")["status"] == "pending_approval"
    return db


def test_the_page_renders_in_a_browser_with_every_series_repair_and_proposal(story, browser, tmp_path):
    page = tmp_path / "report.html"
    printed = write_report(story, page)
    assert "8 errors in 6 signatures" in printed
    repairs = story.admin.execute("SELECT id, action, table_name, column_name FROM selfheal.audit "
                                  "WHERE status = 'applied' ORDER BY id").fetchall()
    assert len(repairs) == 3
    (proposal,) = story.admin.execute("SELECT id FROM selfheal.audit WHERE status = 'pending_approval'").fetchone()

    seen = render(browser, page)
    assert seen["chart"][0] > 400 and seen["chart"][1] > 200, seen["chart"]
    assert seen["shown"][0] > 600  # the chart is drawn at the page's width
    assert sorted(g[0] for g in seen["series"]) == [f"series-{n}" for n in range(6)]
    assert all(width > 0 and height > 0 for _, width, height in seen["series"]), seen["series"]
    assert [g[0] for g in seen["repairs"]] == [f"repair-{r[0]}" for r in repairs]
    assert all(height > 0 for *_, height in seen["repairs"]), seen["repairs"]
    for audit_id, action, table, column in repairs:
        assert f"#{audit_id} {action} {table}.{column}" in page.read_text()
    assert f"SELECT selfheal.approve({proposal});" in seen["text"]
    assert f"SELECT selfheal.reject({proposal}, 'why');" in seen["text"]
    # The hostile table name is shown as text, never run: the probe is the only script.
    assert seen["scripts"] == 1 and f'relation "{HOSTILE_TABLE}" does not exist' in seen["text"]
    (why,) = story.admin.execute("SELECT reason FROM selfheal.error_event WHERE sqlstate = '22012' "
                                 "ORDER BY id DESC LIMIT 1").fetchone()
    assert "Left for review" in seen["text"] and why in seen["text"]
    (ddl,) = story.admin.execute("SELECT ddl FROM selfheal.audit WHERE id = %s", (proposal,)).fetchone()
    assert ddl.splitlines()[0] in seen["text"]  # what approving it would run

    screenshot = tmp_path / "report.png"
    browser("--window-size=1100,1400", "--hide-scrollbars", f"--screenshot={screenshot}", page.as_uri())
    png = screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 1100
    assert len(png) > 30_000  # a blank page compresses to a few kilobytes

    assert seen["fetched"] == [], "the page requested something"
    # Chromium contacts its own services at start (which ones varies by build and run); none of
    # them is named anywhere in the page, which is what a fetch by the page would need.
    text = page.read_text()
    assert not [host for host in browser.listener.hosts() if host and host in text], browser.listener.requests


def test_the_network_checks_would_see_a_request_if_a_page_made_one(browser, tmp_path):
    """The no-network checks above are only as good as their probe and listener: a page that
    does fetch is caught by both, even though the fetch fails."""
    fetching = tmp_path / "fetching.html"
    fetching.write_text('<!doctype html><html><body><img src="http://selfheal.invalid/pixel.png">'
                        '<link rel="stylesheet" href="https://selfheal.invalid/style.css"></body></html>')
    seen = render(browser, fetching)
    assert sorted(seen["fetched"]) == ["http://selfheal.invalid/pixel.png", "https://selfheal.invalid/style.css"]
    assert "selfheal.invalid" in browser.listener.hosts()
    assert [h for h in browser.listener.hosts() if h and h in fetching.read_text()] == ["selfheal.invalid"]
    assert "GET http://selfheal.invalid/pixel.png HTTP/1.1" in browser.listener.requests


@pytest.fixture
def reader(story):
    """A role that may run the report but may read only the audit columns report() needs."""
    story.admin.execute("""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'report_reader') THEN
            CREATE ROLE "report_reader" LOGIN;
          END IF;
        END $$;
        GRANT SELECT ON selfheal."error_event" TO "report_reader";
        GRANT SELECT ("id", "status", "created_at", "undone_by") ON selfheal."audit" TO "report_reader";
        GRANT EXECUTE ON FUNCTION selfheal.report(), selfheal.timeline(interval) TO "report_reader";
    """)
    return "report_reader"


def test_a_role_that_may_not_read_the_audit_still_gets_the_page(story, reader, browser, tmp_path):
    page = tmp_path / "report.html"
    write_report(story, page, user=reader)
    seen = render(browser, page)
    assert "may not read selfheal.audit" in seen["text"]
    assert len(seen["series"]) == 6 and len(seen["repairs"]) == 3
    assert "selfheal.approve(" not in seen["text"]
