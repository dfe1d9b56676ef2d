#!/usr/bin/env python3
"""Stalled clients and a scrape storm against ADDR:PORT/metrics (stdlib only).

  scrape_storm.py ADDR:PORT STALLED THREADS SECONDS
Opens STALLED connections that send half a request line and never read, prints "ready", then
runs THREADS threads scraping in a loop for SECONDS; prints "ok=N failed=M max_s=X
stalled_dropped=K" (K: stalled connections the server had closed by then).
"""
import socket
import sys
import threading
import time
import urllib.request

addr, stalled_n, threads_n, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
host, port = addr.rsplit(":", 1)
stalled = []
for _ in range(stalled_n):
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished, never read
    stalled.append(s)
print("ready", flush=True)
ok = failed = 0
worst = 0.0
lock = threading.Lock()


def loop():
    global ok, failed, worst
    end = time.time() + seconds
    while time.time() < end:
        t = time.time()
        try:
            urllib.request.urlopen(f"http://{addr}/metrics", timeout=10).read()
            good = True
        except OSError:
            good = False
        with lock:
            ok += good
            failed += not good
            worst = max(worst, time.time() - t)


ts = [threading.Thread(target=loop) for _ in range(threads_n)]
for t in ts:
    t.start()
for t in ts:
    t.join()
# How many stalled connections the server dropped (its request timeout) while they stalled.
dropped = 0
for s in stalled:
    s.settimeout(0.05)
    try:
        s.recv(1 << 16)  # EOF, or an error response before it: the server gave up on it
        dropped += 1
    except socket.timeout:
        pass
    except OSError:
        dropped += 1
    s.close()
print(f"ok={ok} failed={failed} max_s={worst:.2f} stalled_dropped={dropped}", flush=True)
