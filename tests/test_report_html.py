"""The HTML report in a real headless Chromium: every plot decodes, nothing fails or is fetched."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from pocketbench.cli import app
from typer.testing import CliRunner

from tests.conftest import DATA

CHROMIUM = shutil.which("chromium")
# Injected into a copy of the page (the report itself carries no script): collects load errors
# from the start, then writes what the browser made of every image into the DOM.
PROBE = """<script>
window.__failed = [];
window.addEventListener("error", (e) => {
  const t = e.target;
  window.__failed.push(t && t.tagName ? t.tagName + " " + (t.src || t.href) : String(e.message));
}, true);
window.addEventListener("load", () => {
  const images = Array.from(document.images).map((i) => (
    {alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight}));
  const fetched = performance.getEntriesByType("resource").map((r) => r.name);
  const probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify({images, failed: window.__failed, fetched});
  document.body.appendChild(probe);
});
</script>"""


def _results_with_two_runs(tmp_path):
    root = tmp_path / "results"
    for run in (DATA / "v1_run", DATA / "example_run"):
        manifest = json.loads((run / "manifest.json").read_text())
        shutil.copytree(run, root / manifest["run_id"])
    return root


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed: `just system-deps` installs it")
def test_html_report_renders_its_plots_in_chromium(tmp_path):
    root = _results_with_two_runs(tmp_path)
    page = tmp_path / "report.html"
    result = CliRunner().invoke(
        app, ["report", "LATEST", "--compare", "First", "--format", "html", "--out", str(page), "--results", str(root)]
    )
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the page must not reference the network"
    assert "<script" not in html
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("<head>", "<head>" + PROBE, 1))

    profile = tmp_path / "chromium-profile"
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--virtual-time-budget=10000", "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=180, check=True,
    ).stdout  # fmt: skip
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert match, f"the page never finished loading: {dom[-500:]}"
    state = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<"))
    assert state["failed"] == [] and state["fetched"] == []
    alts = [image["alt"] for image in state["images"]]
    assert alts == [
        "digits_cnn latency distribution",
        "digits_cnn accuracy and .pte size (KB) vs latency",
        "digits_cnn memory",
    ]
    for image in state["images"]:
        assert image["complete"] and image["width"] > 100 and image["height"] > 100, image
    # The trends: a row per cell measured in both runs, its p50 drawn as an inline SVG line.
    assert "Trends over runs" in dom and dom.count('<svg class="spark"') >= 1
    # The tables and warnings are in the page as text, not only in pictures.
    assert "recipe_error" in dom and "failed: digits_cnn int4-magic" in dom
