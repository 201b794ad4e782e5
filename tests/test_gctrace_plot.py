#!/usr/bin/env python3
"""Tests of tools/gctrace-plot, the gctrace log -> SVG chart tool.

Runs the tool as a program on small inline logs (cgc's format, Go's older
format without "MB stacks, MB globals", a log with noise, malformed lines and
a forced cycle, a single cycle of zeros, empty input) and checks the exit
status, that the SVG is well-formed XML, and the data points it holds: every
series is a group with id "series-NAME" whose data points have class "marker".

The tool's path comes from $GCTRACE_PLOT (CTest sets it) or defaults to
../tools/gctrace-plot next to this file. Standard library only.
"""

import os
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.environ.get("GCTRACE_PLOT") or os.path.join(
    HERE, os.pardir, "tools", "gctrace-plot")
SVG = "{http://www.w3.org/2000/svg}"

# Lines as cgc prints them (from a run of bench/pause-cgc), with a 0 pause
# as cgc prints below 1 us.
CGC_LOG = """\
gc 1 @0.004s 13%: 0.038+1.2+0.008 ms clock, 0.038+0/1.1/0+0.008 ms cpu, 8->8->8 MB, 16 MB goal, 0 MB stacks, 0 MB globals, 1 P
gc 2 @0.067s 8%: 0.007+12+0.014 ms clock, 0.007+0/12/0+0.014 ms cpu, 15->16->16 MB, 32 MB goal, 0 MB stacks, 0 MB globals, 1 P
gc 3 @0.206s 14%: 0+60+0.018 ms clock, 0+33/28/0+0.018 ms cpu, 31->33->33 MB, 67 MB goal, 0 MB stacks, 0 MB globals, 1 P
gc 4 @9.934s 33%: 4.0+922+0.23 ms clock, 4.0+794/441/0+0.23 ms cpu, 551->572->285 MB, 570 MB goal, 0 MB stacks, 0 MB globals, 2 P
"""

# Go's format before Go 1.19: no stacks/globals fields.
GO_LOG = """\
gc 1 @0.012s 2%: 0.026+0.39+0.10 ms clock, 0.21+0.16/0.35/0.65+0.84 ms cpu, 4->4->0 MB, 5 MB goal, 8 P
gc 2 @0.023s 3%: 0.011+0.51+0.046 ms clock, 0.093+0.12/0.72/0.31+0.37 ms cpu, 4->4->1 MB, 5 MB goal, 8 P
gc 3 @0.041s 3%: 0.009+0.80+0.032 ms clock, 0.079+0.30/1.1/0.55+0.26 ms cpu, 4->5->1 MB, 5 MB goal, 8 P
gc 4 @0.070s 4%: 0.010+1.1+0.040 ms clock, 0.080+0.22/1.9/1.4+0.32 ms cpu, 6->7->2 MB, 9 MB goal, 8 P
gc 5 @0.100s 4%: 0.012+25+0.051 ms clock, 0.096+0.22/1.9/1.4+0.40 ms cpu, 8->9->3 MB, 12 MB goal, 8 P
"""

# Program output, a cgc warning, Go's scavenger and pacer lines, a truncated
# gctrace line and a forced cycle, interleaved.
NOISY_LOG = """\
starting the program
cgc: CGC_PERCENT: malformed value "abc", using 100
gc 1 @0.010s 1%: 0.020+0.50+0.010 ms clock, 0.040+0.1/0.4/0+0.020 ms cpu, 4->4->2 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P
scvg0: inuse: 3, idle: 1, sys: 5, released: 0, consumed: 5 (MB)
pacer: assist ratio=+1.0e+000 (scan 0 MB in 4->4 MB) workers=2++0.000000e+000
gc 2 @0.020s 2%: 0.030+0.60+0.020 ms clock, 0.060+0.1/0.5/0+0.040 ms cpu, 4->5->2 MB
result: 42
gc 3 @0.030s 2%: 0.025+0.70+0.015 ms clock, 0.050+0.1/0.6/0+0.030 ms cpu, 5->5->1 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P (forced)
gc 4 @0.045s 3%: 0.021+0.80+0.012 ms clock, 0.042+0.1/0.7/0+0.024 ms cpu, 4->4->2 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P
done
"""

ONE_ZERO_LOG = ("gc 1 @0.000s 0%: 0+0+0 ms clock, 0+0/0/0+0 ms cpu, 0->0->0 MB, "
                "4 MB goal, 0 MB stacks, 0 MB globals, 1 P\n")

SERIES = ["heap-start", "heap-end", "heap-live", "heap-goal",
          "stw1", "stw2", "mark", "cpu"]


def run(args, stdin=""):
    return subprocess.run([sys.executable, TOOL] + args, input=stdin,
                          capture_output=True, text=True, timeout=60)


def marker_y(el):
    """Centre y of a marker, whatever its shape."""
    if el.get("cy") is not None:
        return float(el.get("cy"))
    if el.get("points") is not None:
        ys = [float(p.split(",")[1]) for p in el.get("points").split()]
        return (min(ys) + max(ys)) / 2
    return float(el.get("y")) + float(el.get("height")) / 2


def classes(el):
    return el.get("class", "").split()


class GctracePlotTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def write(self, name, text):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def plot(self, log, name="trace.log", extra=()):
        """Runs the tool on log written to name; returns (process, root)."""
        src = self.write(name, log)
        out = os.path.join(self.tmp.name, name + ".svg")
        p = run([src, "-o", out] + list(extra))
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out, encoding="utf-8") as f:
            svg = f.read()
        root = ET.fromstring(svg)  # raises on malformed XML
        self.assertEqual(root.tag, SVG + "svg")
        return p, root

    def by_id(self, root, ident):
        found = [e for e in root.iter() if e.get("id") == ident]
        self.assertEqual(len(found), 1, "no unique element with id " + ident)
        return found[0]

    def markers(self, root, series):
        g = self.by_id(root, "series-" + series)
        return [e for e in g.iter() if "marker" in classes(e)]

    def text_of(self, root, ident):
        return "".join(self.by_id(root, ident).itertext())

    def assert_points(self, root, n):
        for s in SERIES:
            self.assertEqual(len(self.markers(root, s)), n, s)
        for s in ("heap-start", "heap-end", "heap-live", "heap-goal", "cpu"):
            line = [e for e in self.by_id(root, "series-" + s).iter()
                    if e.tag == SVG + "polyline"]
            self.assertEqual(len(line), 1, s)
            xs = [float(p.split(",")[0]) for p in line[0].get("points").split()]
            self.assertEqual(len(xs), n, s)
            self.assertEqual(xs, sorted(xs), s + ": x must follow time")

    def test_cgc_format(self):
        p, root = self.plot(CGC_LOG, "cgc.log")
        self.assert_points(root, 4)
        # Default title: the input file name.
        self.assertEqual(self.text_of(root, "title"), "cgc.log")
        summary = self.text_of(root, "summary")
        self.assertIn("4 cycles", summary)
        self.assertIn("max STW pause 4.0 ms", summary)
        self.assertIn("max heap 572 MB", summary)
        self.assertIn("final GC CPU 33%", summary)
        # A pause stem per cycle and STW series, and the zero pause of
        # gc 3 drawn on the bottom row rather than dropped.
        for s in ("stw1", "stw2"):
            stems = [e for e in self.by_id(root, "series-" + s).iter()
                     if e.tag == SVG + "line"]
            self.assertEqual(len(stems), 4, s)
        # No forced cycle: no forced markers.
        self.assertFalse([e for e in root.iter()
                          if e.get("id") == "forced-cycles"])
        # Heap values land in the right order on the y axis (SVG y grows
        # downwards): at gc 4 the start (551) is above the live heap (285).
        start = marker_y(self.markers(root, "heap-start")[3])
        end = marker_y(self.markers(root, "heap-end")[3])
        live = marker_y(self.markers(root, "heap-live")[3])
        self.assertLess(end, start)
        self.assertLess(start, live)

    def test_go_format_without_stacks_globals(self):
        p, root = self.plot(GO_LOG, "go.log", ["--title", "Go 1.18 <trace> & co"])
        self.assert_points(root, 5)
        self.assertEqual(self.text_of(root, "title"), "Go 1.18 <trace> & co")
        summary = self.text_of(root, "summary")
        self.assertIn("5 cycles", summary)
        self.assertIn("max STW pause 0.10 ms", summary)
        self.assertIn("max heap 9 MB", summary)
        self.assertIn("final GC CPU 4%", summary)
        self.assertIn("8 P", summary)

    def test_noise_malformed_and_forced(self):
        p, root = self.plot(NOISY_LOG, "noisy.log", ["-v"])
        self.assert_points(root, 3)  # gc 2 is truncated: skipped
        self.assertIn("1 malformed", p.stderr)
        forced = self.by_id(root, "forced-cycles")
        self.assertEqual(len([e for e in forced.iter()
                              if "marker" in classes(e)]), 1)
        self.assertIn("(1 forced)", self.text_of(root, "summary"))
        # The forced cycle is also marked in every panel by a dashed line.
        lines = [e for e in root.iter() if "forced-line" in classes(e)]
        self.assertEqual(len(lines), 4)
        self.assertIn("forced cycle", "".join(
            self.by_id(root, "legend-heap").itertext()))

    def test_stdin_to_stdout(self):
        p = run([], stdin=GO_LOG)
        self.assertEqual(p.returncode, 0, p.stderr)
        root = ET.fromstring(p.stdout)
        self.assert_points(root, 5)
        self.assertIn("standard input", self.text_of(root, "title"))

    def test_single_cycle_of_zeros(self):
        p, root = self.plot(ONE_ZERO_LOG, "one.log")
        self.assert_points(root, 1)
        summary = self.text_of(root, "summary")
        self.assertIn("1 cycle ", summary)
        self.assertIn("max STW pause 0 ms", summary)
        # Every coordinate is a finite number inside the canvas.
        for e in root.iter():
            for a in ("x", "y", "cx", "cy", "width", "height"):
                v = e.get(a)
                if v is not None and not v.endswith("%"):
                    self.assertTrue(-1 <= float(v) <= 1000, (e.tag, a, v))

    def test_empty_input_fails(self):
        src = self.write("empty.log", "")
        out = os.path.join(self.tmp.name, "empty.svg")
        p = run([src, "-o", out])
        self.assertEqual(p.returncode, 1)
        self.assertIn("empty", p.stderr)
        self.assertIn("gctrace", p.stderr)
        self.assertFalse(os.path.exists(out), "no SVG on failure")
        self.assertEqual(p.stdout, "")

    def test_no_gctrace_lines_fails(self):
        p = run([], stdin="hello\ncgc: a warning\nscvg0: inuse: 3\n")
        self.assertEqual(p.returncode, 1)
        self.assertIn("no gctrace line", p.stderr)
        self.assertEqual(p.stdout, "")

    def test_help(self):
        p = run(["--help"])
        self.assertEqual(p.returncode, 0)
        for word in ("usage:", "--title", "-o", "-v", "gctrace"):
            self.assertIn(word, p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
