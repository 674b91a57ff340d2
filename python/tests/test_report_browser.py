"""The report page in a real headless browser (Chromium): table and every figure render.

Two runs of Chromium on the built-in report (quick settings):
- ``--dump-dom`` of a copy of ``index.html`` with a script that, once the page
  has loaded, records for every ``<img>`` whether it decoded (``naturalWidth > 0``);
- ``--screenshot`` of the page itself, checked to be neither blank nor one colour,
  with the figures' pixels present where the images are.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make system-deps installs it)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--disable-extensions", "--allow-file-access-from-files", "--virtual-time-budget=5000"]

CHECK_SCRIPT = """
<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  var marker = document.createElement("div");
  marker.id = "image-check";
  marker.setAttribute("data-loaded", ok.length + "/" + imgs.length);
  marker.setAttribute("data-sizes",
                      imgs.map(function (i) { return i.naturalWidth + "x" + i.naturalHeight; }).join(","));
  marker.setAttribute("data-table-rows", document.querySelectorAll("#summary tr").length);
  document.body.appendChild(marker);
});
</script>
"""


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "report"
    proc = subprocess.run([sys.executable, "-m", "relusv", "report", "--quick", "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out


def _chromium(args, tmp_path):
    profile = tmp_path / "profile"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120)


def test_every_image_loads_in_chromium(report_dir, tmp_path):
    page = (report_dir / "index.html").read_text()
    figures = sorted(path.name for path in report_dir.glob("*.png"))
    assert figures == ["gmw.png", "pruning.png", "pruning_retrained.png", "spectra.png"]
    assert page.count("<img") == len(figures)
    check = report_dir / "check.html"  # beside index.html so relative image paths resolve the same way
    check.write_text(page.replace("</body>", CHECK_SCRIPT + "</body>"))
    proc = _chromium(["--dump-dom", check.as_uri()], tmp_path)
    marker = re.search(r'id="image-check" data-loaded="(\d+)/(\d+)" data-sizes="([^"]*)" data-table-rows="(\d+)"',
                       proc.stdout)
    assert marker, proc.stdout[-2000:] + proc.stderr[-2000:]
    loaded, total, sizes, rows = int(marker.group(1)), int(marker.group(2)), marker.group(3), int(marker.group(4))
    assert total == len(figures) and loaded == total, sizes
    assert all(int(w) > 300 and int(h) > 200 for w, h in (s.split("x") for s in sizes.split(",")))
    assert rows == 1 + 1 + 4  # header, input, four layers


def test_screenshot_shows_table_and_figures(report_dir, tmp_path):
    import matplotlib.image

    shot = tmp_path / "page.png"
    proc = _chromium([f"--screenshot={shot}", "--window-size=1280,3600", (report_dir / "index.html").as_uri()],
                     tmp_path)
    assert shot.is_file(), proc.stderr[-2000:]
    img = matplotlib.image.imread(str(shot))[..., :3]
    assert img.shape[:2] == (3600, 1280)
    gray = img.mean(axis=2)
    ink = gray < 0.9  # anything visibly darker than the white background
    assert ink.mean() > 0.03, "the screenshot is (almost) blank"
    # Figures are colourful (blue and red curves); text and table borders are grey.
    colourful = (img.max(axis=2) - img.min(axis=2)) > 0.25
    rows_with_colour = np.flatnonzero(colourful.any(axis=1))
    assert rows_with_colour.size > 300, "no figure pixels in the screenshot"
    # Content spans the page: the table near the top, figures further down.
    assert ink[:900].mean() > 0.02 and rows_with_colour.max() > 1800
    for png in ("spectra.png", "gmw.png", "pruning.png"):
        fig = matplotlib.image.imread(str(report_dir / png))
        assert fig.ndim == 3 and fig.shape[0] > 200 and fig[..., :3].std() > 0.05
