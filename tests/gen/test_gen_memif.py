#!/usr/bin/env python3
"""closetap-gen -> memif -> closetap (live, --duration bounded, each on its own CPU where there
are two): closetap's closes per pattern and initiator equal the generator's ground truth exactly,
and closetap received every packet the generator sent. The generator waits for the ring
(--tx-retry-us 2 s) rather than count a packet as not sent, so a noisy machine (or a sanitizer
build) makes the run slower, never wrong.

usage: test_gen_memif.py CLOSETAP_GEN CLOSETAP"""
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..'))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'tools', 'capacity'))
import ctcap  # noqa: E402
from testlib import Checker  # noqa: E402

BASE = ['--flows', '2000', '--packets', '60000', '--rate', '40000', '--churn', '0.3',
        '--tx-retry-us', '2000000']
CASES = [
    ('default mix', []),
    ('vxlan, vlan, imix, skew 1 ms, loss 10%',
     ['--vxlan', '77', '--vlan', '12', '--imix', '--skew-us', '1000', '--loss', '0.1',
      '--seed', '5']),
]


def main():
    gen, closetap = sys.argv[1], sys.argv[2]
    if os.geteuid() != 0:
        print('SKIP memif needs root (EAL without hugepages)')
        return 77
    ck = Checker()
    with tempfile.TemporaryDirectory(prefix='ctg-memif-') as wd:
        trial = ctcap.MemifTrial(gen, closetap, wd, 'memif', bound_s=100,
                                 closetap_args=['--flows', '65536'])
        for what, extra in CASES:
            r = trial(BASE + extra, timeout=100)
            ck.check(r['not_sent'] == 0, f'{what}: the generator sent every packet',
                     f'{r["not_sent"]} not sent')
            ck.check(r['rx'] == r['sent'] and r['drops'] == 0,
                     f'{what}: closetap received every packet ({r["sent"]})',
                     f'rx {r["rx"]} drops {r["drops"]}')
            ck.check(r['truth_match'], f'{what}: closes equal the truth ({r["connections"]})',
                     r['truth_diff'])
    print(f'{ck.passed} passed, {ck.failed} failed, {ck.skipped} skipped')
    return 1 if ck.failed else 0


if __name__ == '__main__':
    sys.exit(main())
