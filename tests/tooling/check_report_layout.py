#!/usr/bin/env python3
"""Checks the charts of a report as headless Chromium lays them out.

usage: check_report_layout.py CHROMIUM REPORT.html OUT_DIR [--min-charts N] [--need ID ...]

The report has no script; a copy of it gets one (test only) that measures every
chart with getBBox() after layout and writes the boxes into the page, which
Chromium's --dump-dom returns. Checked per chart: something is drawn (a line or
a point, no "no data"), at most 8 series, legend entries do not intersect one
another and stay inside the chart, the title fits. Prints "N passed, N failed".
"""
import json
import os
import re
import subprocess
import sys
import tempfile

PROBE = r"""
<script>
(function () {
  const out = [];
  for (const svg of document.querySelectorAll('svg.chart')) {
    const vb = svg.viewBox.baseVal;
    const box = (el) => { const b = el.getBBox(); return [b.x, b.y, b.width, b.height]; };
    const title = svg.querySelector('text.chart-title');
    out.push({
      title: svg.querySelector('title') ? svg.querySelector('title').textContent : '',
      cls: svg.getAttribute('class'),
      width: vb.width, height: vb.height,
      lines: svg.querySelectorAll('polyline.series').length,
      points: svg.querySelectorAll('circle').length,
      no_data: svg.textContent.indexOf('no data') >= 0,
      legend: Array.from(svg.querySelectorAll('g.legend-item')).map(box),
      colors: Array.from(new Set(Array.from(svg.querySelectorAll('g.legend-item line')).map(l => l.getAttribute('stroke')))),
      title_box: title ? box(title) : null,
    });
  }
  const pre = document.createElement('pre');
  pre.id = 'layout-result';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""


def intersect(a, b, tol=0.5):
    return (a[0] + tol < b[0] + b[2] and b[0] + tol < a[0] + a[2] and
            a[1] + tol < b[1] + b[3] and b[1] + tol < a[1] + a[3])


def main():
    args = sys.argv[1:]
    if len(args) < 3:
        sys.exit(__doc__)
    chromium, report, out_dir = args[:3]
    min_charts, need = 1, []
    rest = args[3:]
    while rest:
        if rest[0] == "--min-charts":
            min_charts, rest = int(rest[1]), rest[2:]
        elif rest[0] == "--need":
            need, rest = need + [rest[1]], rest[2:]
        else:
            sys.exit(f"unknown argument {rest[0]}")
    os.makedirs(out_dir, exist_ok=True)
    html = open(report, encoding="utf-8").read()
    failures = []
    if "<script" in html:
        failures.append("the report itself holds a <script>")
    for ident in need:
        if f'id="{ident}"' not in html:
            failures.append(f"no element with id {ident}")
    name = os.path.splitext(os.path.basename(report))[0]
    probe = os.path.join(out_dir, name + ".probe.html")
    with open(probe, "w", encoding="utf-8") as f:
        f.write(html.replace("</body>", PROBE + "</body>"))
    with tempfile.TemporaryDirectory() as profile:
        p = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                            "--disable-background-networking", "--disable-component-update", "--disable-sync",
                            "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
                            "--dump-dom", "file://" + os.path.abspath(probe)],
                           capture_output=True, text=True, timeout=180)
    m = re.search(r'<pre id="layout-result">(.*?)</pre>', p.stdout, re.S)
    if not m:
        print(f"FAIL: {name}: no layout result from Chromium (rc {p.returncode}): {p.stderr[-2000:]}")
        print("0 passed, 1 failed")
        return 1
    charts = json.loads(m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    if len(charts) < min_charts:
        failures.append(f"{len(charts)} charts, expected at least {min_charts}")
    for c in charts:
        where = f"chart '{c['title']}'"
        if c["no_data"] or (c["lines"] == 0 and c["points"] == 0):
            failures.append(f"{where}: empty")
        if len(c["legend"]) > 8 or len(c["colors"]) > 8:
            failures.append(f"{where}: {len(c['legend'])} series, {len(c['colors'])} colours (at most 8)")
        boxes = c["legend"]
        for i in range(len(boxes)):
            b = boxes[i]
            if b[0] < -0.5 or b[1] < -0.5 or b[0] + b[2] > c["width"] + 0.5 or b[1] + b[3] > c["height"] + 0.5:
                failures.append(f"{where}: legend entry {i} {b} leaves the chart ({c['width']}x{c['height']})")
            for j in range(i + 1, len(boxes)):
                if intersect(b, boxes[j]):
                    failures.append(f"{where}: legend entries {i} {b} and {j} {boxes[j]} overlap")
        t = c["title_box"]
        if t and t[0] + t[2] > c["width"] + 0.5:
            failures.append(f"{where}: title wider than the chart ({t[0] + t[2]:.0f} > {c['width']})")
    for f in failures:
        print(f"FAIL: {name}: {f}")
    legend = sum(len(c["legend"]) for c in charts)
    print(f"{name}: {len(charts)} charts, {legend} legend entries checked")
    print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
