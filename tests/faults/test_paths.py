#!/usr/bin/env python3
"""Paths from configuration (docs/security.md): every unusable output path ends closetap with
exactly one line naming it and exit 1, before DPDK starts; a symbolic link in a world-writable
directory is refused; a configuration or signature file that is a directory or missing is one
line too. Runs the real binary on the bundled capture."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from testlib import Checker  # noqa: E402

PCAP = os.path.join(os.path.dirname(HERE), "captures", "scenarios.pcap")


def main():
    ct = os.path.abspath(sys.argv[1])
    c = Checker()
    with tempfile.TemporaryDirectory(prefix="ctx-paths-") as tmp:
        ww = os.path.join(tmp, "ww")
        os.mkdir(ww)
        os.chmod(ww, 0o1777)
        target = os.path.join(tmp, "victim")
        open(target, "w").write("keep\n")
        os.symlink(target, os.path.join(ww, "link"))
        ro = os.path.join(tmp, "ro")
        os.mkdir(ro)
        os.chmod(ro, 0o555)
        cases = [
            ("--conn-log", os.path.join(tmp, "missing", "c.jsonl"), "does not exist"),
            ("--conn-log", tmp, "is a directory"),
            ("--events", os.path.join(ww, "link"), "symbolic link"),
            ("--metrics-file", os.path.join(ww, "link"), "symbolic link"),
            ("--metrics-file", os.path.join(tmp, "missing", "m.prom"), "does not exist"),
        ]
        if os.geteuid() != 0:  # root writes into a 0555 directory anyway
            cases.append(("--conn-log", os.path.join(ro, "c.jsonl"), "Permission denied"))
        # Files closetap reads: a directory or a missing file is one line (exit 2 for --config,
        # a usage error; 1 for the signature file).
        cases += [("--signatures", tmp, "is a directory"), ("--config", tmp, "is a directory"),
                  ("--config", os.path.join(tmp, "none.yaml"), "No such file")]
        for opt, path, why in cases:
            p = subprocess.run([ct, "--pcap", PCAP, opt, path, "--quiet"], capture_output=True,
                               text=True, timeout=60)
            lines = [l for l in p.stderr.splitlines() if l.strip()]
            code = 2 if opt == "--config" else 1
            c.check(p.returncode == code and len(lines) == 1 and why in lines[0] and path in lines[0]
                    and "EAL" not in p.stderr, f"{opt} {path}: one line, exit {code} ({why})",
                    f"exit {p.returncode}: {p.stderr.strip()}")
        c.check(open(target).read() == "keep\n", "the symlink's target was not touched")
        ok = os.path.join(tmp, "ok.jsonl")
        p = subprocess.run([ct, "--pcap", PCAP, "--conn-log", ok, "--quiet"], capture_output=True,
                           text=True, timeout=60)
        c.check(p.returncode == 0 and sum(1 for _ in open(ok)) > 0, "a good path still works")
    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
