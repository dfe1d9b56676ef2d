#!/usr/bin/env python3
"""Application labels on public captures with known protocols (../shared/corpus/zeek).

Each expectation names a capture, the responder port of its connections of interest and the
label closetap must give them (the protocol the trace was recorded for, as its Zeek test says).
Deliberately crossed cases are included: HTTP sent to port 22 and TLS sent to port 80 must be
labelled by their bytes, not their ports. Skipped (77) without the corpus.
"""
import collections
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "..", "..", "shared", "corpus", "zeek", "pcaps")

# (capture, responder port, expected app, how many connections at least)
EXPECT = [
    ("http__get.pcap", 80, "http", 1),
    ("http__concurrent-range-requests.pcap", 80, "http", 3),
    ("http__http-to-ssh.pcap", 22, "http", 1),           # HTTP on the SSH port
    ("tls__https-to-http.pcap", 80, "tls", 1),           # TLS on the HTTP port
    ("wikipedia.pcap", 80, "http", 9),
    ("ssh__ssh.pcap", 22, "ssh", 20),
    ("ssh__ssh.server-side-half-duplex.pcap", 22, "ssh", 20),
    ("ssh__server-pre-banner-data.pcap", 22, "ssh", 1),
    ("tunnels__gre-sample.pcap", 22, "ssh", 1),          # SSH inside GRE
    ("ftp__ipv4.pcap", 21, "ftp", 1),
    ("ftp__ipv6.pcap", 21, "ftp", 1),
    ("ftp__cwd-navigation.pcap", 21, "ftp", 1),
    ("pop3__pop3.pcap", 110, "pop3", 5),
    ("mysql__encrypted.pcap", 3306, "mysql", 1),
    ("redis__django-cloud.pcapng", 10625, "redis", 1),   # Redis on a cloud provider's port
    ("pppoe-over-qinq.pcap", 443, "tls", 1),
    ("tunnels__vxlan-encapsulated-http.pcap", 80, "http", 1),
    ("tunnels__geneve-many-options.pcap", 80, "http", 1),
    ("tunnels__Teredo.pcap", 80, "http", 3),
    ("http__zeek-image-post-1080-8000-x.pcap", 8000, "http", 1),
]
# Data channels and protocols without a signature stay unknown.
EXPECT_UNKNOWN = [("ftp__ipv4.pcap", 56666), ("ldap__ldap-who-am-i.pcap", 389),
                  ("modbus__modbus-eit.pcap", 502), ("krb__optional-service-name.pcap", 88)]


def main():
    closetap = sys.argv[1]
    if not os.path.isdir(CORPUS):
        print(f"SKIP: no corpus at {CORPUS}")
        return 77
    cache = {}
    passed = failed = 0

    def records(pcap):
        if pcap not in cache:
            with tempfile.TemporaryDirectory() as tmp:
                log = os.path.join(tmp, "c.jsonl")
                subprocess.run([closetap, "--pcap", os.path.join(CORPUS, pcap), "--conn-log", log,
                                "--quiet"], check=True, capture_output=True, timeout=120)
                cache[pcap] = [json.loads(l) for l in open(log)]
        return cache[pcap]

    for pcap, port, app, at_least in EXPECT:
        got = collections.Counter(r["app"] for r in records(pcap) if r["resp_p"] == port)
        ok = got.get(app, 0) >= at_least
        passed += ok
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} {pcap} port {port}: {app} x{at_least} wanted, got {dict(got)}")
    for pcap, port in EXPECT_UNKNOWN:
        got = collections.Counter(r["app"] for r in records(pcap) if r["resp_p"] == port)
        ok = bool(got) and set(got) == {"unknown"}
        passed += ok
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} {pcap} port {port}: unknown wanted, got {dict(got)}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
