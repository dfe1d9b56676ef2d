#!/usr/bin/env python3
"""Runs one fuzz target for the meson test suites (tests/fuzz/meson.build, docs/fuzzing.md).

  run_fuzz.py fuzz   --name T --exe BIN --seeds-tool S --root SRC --work DIR --seconds N --max-len L
  run_fuzz.py replay --name T --exe BIN --seeds-tool S --root SRC --work DIR

Both first make the generated seeds (fuzz_seeds: the builders' frames and the project's captures,
tests/captures/*.pcap and, where present, every capture under ../shared/corpus, read in place,
never copied into the repository) in DIR/T/seeds.

`fuzz` runs libFuzzer for N seconds on a fresh working corpus DIR/T/corpus, reading the seeds,
tests/fuzz/seeds/T/ and tests/fuzz/regressions/T/ (never writing to them). A crash, an invariant
trap, a leak, a timeout or an out-of-memory fails the test and leaves the input in
DIR/T/artifacts/ (copy it to tests/fuzz/regressions/T/ to make it a regression). The last line
gives the figures docs/fuzzing.md quotes: executions, exec/s, peak RSS, corpus size.

`replay` runs BIN (the target with replay_main.cc, gcc builds) over the same inputs.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import time


def captures(root):
    found = sorted(glob.glob(os.path.join(root, "tests", "captures", "*.pcap")))
    corpus = os.path.join(root, "..", "shared", "corpus")
    if os.path.isdir(corpus):
        for pat in ("*.pcap", "*.pcapng", "*.cap"):
            found += sorted(glob.glob(os.path.join(corpus, "**", pat), recursive=True))
    return found


def make_seeds(args, target_dir):
    seeds = os.path.join(target_dir, "seeds")
    shutil.rmtree(seeds, ignore_errors=True)
    caps = captures(args.root)
    p = subprocess.run([args.seeds_tool, seeds] + caps, capture_output=True, text=True, timeout=300)
    sys.stdout.write(p.stdout)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"{args.name}: fuzz_seeds failed ({p.returncode})")
    print(f"{args.name}: seeds from {len(caps)} captures")
    if args.name == "fuzz_config":  # the commented example configuration
        os.makedirs(os.path.join(seeds, args.name), exist_ok=True)
        shutil.copy(os.path.join(args.root, "deploy", "closetap.yaml"), os.path.join(seeds, args.name))
    dirs = [os.path.join(seeds, args.name)]
    for sub in ("seeds", "regressions"):
        d = os.path.join(args.root, "tests", "fuzz", sub, args.name)
        if os.path.isdir(d):
            dirs.append(d)
    return [d for d in dirs if os.path.isdir(d) and os.listdir(d)]


def stat(text, name):
    m = re.findall(rf"^stat::{name}:\s+(\d+)", text, re.M)
    return int(m[-1]) if m else None


def fuzz(args):
    target_dir = os.path.join(args.work, args.name)
    os.makedirs(target_dir, exist_ok=True)
    inputs = make_seeds(args, target_dir)
    corpus = os.path.join(target_dir, "corpus")
    artifacts = os.path.join(target_dir, "artifacts")
    shutil.rmtree(corpus, ignore_errors=True)
    os.makedirs(corpus)
    os.makedirs(artifacts, exist_ok=True)
    before = set(os.listdir(artifacts))
    cmd = [args.exe, corpus] + inputs + [
        f"-max_total_time={args.seconds}",
        f"-max_len={args.max_len}",
        "-rss_limit_mb=2048",   # a leak or a runaway allocation fails the run
        "-malloc_limit_mb=1024",
        "-timeout=10",          # seconds per input: anything slower is a hang
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/",
    ]
    print("run: " + " ".join(cmd))
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                       timeout=args.seconds + 150)
    took = time.monotonic() - t0
    log = p.stdout + p.stderr
    with open(os.path.join(target_dir, "libfuzzer.log"), "w") as f:
        f.write(log)
    new = sorted(set(os.listdir(artifacts)) - before)
    execs = stat(log, "number_of_executed_units")
    rate = stat(log, "average_exec_per_sec")
    rss = stat(log, "peak_rss_mb")
    units = len(os.listdir(corpus))
    print(f"FUZZ {args.name}: {execs} executions in {took:.0f} s ({rate} exec/s), "
          f"peak RSS {rss} MB, {units} new corpus inputs, exit {p.returncode}")
    if p.returncode != 0 or new:
        # libFuzzer's report: the sanitizer or trap message and the stack.
        lines = log.splitlines()
        start = next((i for i, l in enumerate(lines) if "ERROR:" in l or "fuzz invariant failed" in l
                      or "deadly signal" in l), max(0, len(lines) - 60))
        print("\n".join(lines[max(0, start - 5):start + 60]))
        for a in new:
            print(f"FAIL {args.name}: kept the input as {os.path.join(artifacts, a)}")
        print(f"FAIL {args.name}: copy it to tests/fuzz/regressions/{args.name}/ and fix the bug")
        return 1
    return 0


def replay(args):
    target_dir = os.path.join(args.work, args.name + "-replay")
    os.makedirs(target_dir, exist_ok=True)
    inputs = make_seeds(args, target_dir)
    p = subprocess.run([args.exe] + inputs, timeout=280)
    return p.returncode


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("fuzz", "replay"))
    ap.add_argument("--name", required=True)
    ap.add_argument("--exe", required=True)
    ap.add_argument("--seeds-tool", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--seconds", type=int, default=45)
    ap.add_argument("--max-len", type=int, default=4096)
    args = ap.parse_args()
    return fuzz(args) if args.mode == "fuzz" else replay(args)


if __name__ == "__main__":
    sys.exit(main())
