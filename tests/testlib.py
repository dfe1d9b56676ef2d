"""Helpers the project's Python tests share (golden, ladder, live observers).

Import with `sys.path.insert(0, <tests dir>)`; stdlib only, so the observers can run it inside
a network namespace with the system Python.
"""
import time
import urllib.request


class Checker:
    """Counts checks and prints one PASS/FAIL/SKIP line each; `summary()` is the closing line."""

    def __init__(self):
        self.passed = self.failed = self.skipped = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS {what}")
        else:
            self.failed += 1
            print(f"FAIL {what}" + (f": {detail}" if detail else ""))

    def skip(self, what):
        self.skipped += 1
        print(f"SKIP {what}")


def get(url, timeout=3, data=None):
    with urllib.request.urlopen(url, data=data, timeout=timeout) as r:
        return r.read().decode()


def wait_until(what, fn, seconds, who="test"):
    """Polls fn() until it returns something true; connection errors count as not yet."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            v = fn()
            if v:
                return v
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{who}: timed out waiting for {what}")


def scrape_value(text, name):
    """Value of an unlabelled sample in Prometheus text exposition, or None."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None
