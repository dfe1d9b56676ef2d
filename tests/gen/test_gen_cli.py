#!/usr/bin/env python3
"""closetap-gen's bad arguments: each gives one line on stderr naming the problem and exit 2,
before DPDK starts (no EAL output, no file written).

usage: test_gen_cli.py CLOSETAP_GEN"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..'))
from testlib import Checker  # noqa: E402

OK = ['--packets', '100']
CASES = [  # (what, arguments, a word the line must contain)
    ('zero flows', ['--flows', '0'] + OK, '--flows'),
    ('negative rate', ['--rate', '-5'] + OK, '--rate'),
    ('unknown close pattern', ['--mix', 'fin_5way=1'] + OK, 'fin_5way'),
    ('bad weight', ['--mix', 'rst=lots'] + OK, 'rst=lots'),
    ('all weights zero', ['--mix', 'rst=0'] + OK, 'weights'),
    ('vlan out of range', ['--vlan', '4095'] + OK, '--vlan'),
    ('vni out of range', ['--vxlan', '16777216'] + OK, '--vxlan'),
    ('loss of everything', ['--loss', '1'] + OK, '--loss'),
    ('no length', [], '--packets'),
    ('packets and duration', ['--packets', '5', '--duration', '1'], 'duration'),
    ('new flows without a rate', ['--new-flows-per-sec', '100'] + OK, '--rate'),
    ('more new flows than packets', ['--new-flows-per-sec', '1000000', '--rate', '1000'] + OK,
     '--new-flows-per-sec'),
    ('payload too big', ['--payload', '1461'] + OK, '--payload'),
    ('payload too big for vxlan', ['--payload', '1440', '--vxlan', '1'] + OK, 'payload'),
    ('imix and payload', ['--imix', '--payload', '10'] + OK, 'payload'),
    ('unknown option', ['--bogus'] + OK, '--bogus'),
    ('frames', ['--frames', 'jumbo'] + OK, '--frames'),
]


def main():
    gen = sys.argv[1]
    ck = Checker()
    with tempfile.TemporaryDirectory(prefix='ctg-cli-') as wd:
        out = os.path.join(wd, 'x.pcap')
        for what, args, word in CASES:
            r = subprocess.run([gen, '--pcap-out', out] + args, capture_output=True, text=True,
                               timeout=30)
            lines = [x for x in r.stderr.splitlines() if x.strip()]
            ok = (r.returncode == 2 and len(lines) == 1 and
                  lines[0].startswith('closetap-gen: error:') and word in lines[0] and
                  not os.path.exists(out))
            ck.check(ok, f'{what}: one line, exit 2',
                     f'exit {r.returncode}, stderr {r.stderr.strip()!r}')
        r = subprocess.run([gen] + OK, capture_output=True, text=True, timeout=30)
        ck.check(r.returncode == 2 and 'no port' in r.stderr and len(r.stderr.splitlines()) == 1,
                 'no port: one line, exit 2', r.stderr.strip())
        r = subprocess.run([gen, '--help'], capture_output=True, text=True, timeout=30)
        ck.check(r.returncode == 0 and '--new-flows-per-sec' in r.stdout, '--help lists options')
    print(f'{ck.passed} passed, {ck.failed} failed, {ck.skipped} skipped')
    return 1 if ck.failed else 0


if __name__ == '__main__':
    sys.exit(main())
