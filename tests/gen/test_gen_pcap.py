#!/usr/bin/env python3
"""closetap-gen -> pcap file -> closetap --pcap: closetap's closes per pattern and initiator
(metrics and conn log) equal the generator's ground truth exactly, for every close pattern and
both initiators, and with VLAN, VXLAN, VLAN+VXLAN, skew, IMIX, fixed payloads, loss and IPv6.

usage: test_gen_pcap.py CLOSETAP_GEN CLOSETAP"""
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..'))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'tools', 'capacity'))
import ctcap  # noqa: E402
from testlib import Checker  # noqa: E402

PATTERNS = ['fin_4way', 'fin_3way', 'fin_simultaneous', 'fin_one_side', 'fin_rst', 'rst',
            'rejected', 'no_answer']
BASE = ['--flows', '2000', '--packets', '40000', '--churn', '0.3']
CASES = [
    ('default mix', []),
    ('every pattern, originator closes', ['--resp-closes', '0', '--seed', '2']),
    ('every pattern, responder closes', ['--resp-closes', '1', '--seed', '3']),
    ('vlan', ['--vlan', '100', '--seed', '4']),
    ('vxlan', ['--vxlan', '4242', '--seed', '5']),
    ('vlan and vxlan', ['--vlan', '7', '--vxlan', '1', '--seed', '6']),
    ('skew 2 ms', ['--skew-us', '2000', '--rate', '200000', '--seed', '7']),
    ('imix', ['--imix', '--seed', '8']),
    ('imix in vxlan', ['--imix', '--vxlan', '9', '--seed', '9']),
    ('payload 1000', ['--payload', '1000', '--seed', '10']),
    ('loss 20% of responder data', ['--loss', '0.2', '--seed', '11']),
    ('ipv6 for half the flows', ['--ipv6', '0.5', '--seed', '12']),
    ('ipv6 imix in vlan and vxlan', ['--ipv6', '1', '--imix', '--vlan', '7', '--vxlan', '3',
                                     '--seed', '13']),
]
EQUAL_MIX = ','.join(p + '=1' for p in PATTERNS)


def main():
    gen, closetap = sys.argv[1], sys.argv[2]
    ck = Checker()
    with tempfile.TemporaryDirectory(prefix='ctg-pcap-') as wd:
        for i, (what, extra) in enumerate(CASES):
            args = BASE + ['--mix', EQUAL_MIX] + extra if i in (1, 2) else BASE + extra
            name = f'case{i}'
            pcap, truth = ctcap.gen_to_pcap(gen, wd, name, args)
            prom, log = ctcap.closetap_pcap(closetap, wd, name, pcap)
            t = ctcap.closes_from_truth(truth)
            p = truth['packets']
            ck.check(truth['truth_exact'] and p['not_sent'] == 0 and p['sent'] == p['offered'],
                     f'{what}: every packet written ({p["sent"]})')
            rx = ctcap.total(prom, 'closetap_rx_packets_total')
            ck.check(rx == p['sent'], f'{what}: closetap read every packet',
                     f'{rx} of {p["sent"]}')
            tcp = ctcap.total(prom, 'closetap_packets_total', **{'class': 'tcp'})
            ck.check(tcp == p['sent'], f'{what}: every packet parsed as TCP',
                     f'{tcp} of {p["sent"]}')
            d = ctcap.diff(t, ctcap.closes_from_metrics(prom))
            ck.check(not d, f'{what}: closetap_tcp_closes_total equals the truth', d)
            d = ctcap.diff(t, log)
            ck.check(not d, f'{what}: conn log equals the truth', d)
            if i in (1, 2):
                side = 'orig' if i == 1 else 'resp'
                missing = [c for c in PATTERNS if not any(
                    n for (cc, init), n in t.items() if cc == c)]
                ck.check(not missing, f'{what}: every pattern generated', ','.join(missing))
                wrong = [f'{c}/{init}' for (c, init), n in t.items()
                         if c not in ('rejected', 'no_answer', 'none') and init != side]
                ck.check(not wrong, f'{what}: every close started by {side}', ','.join(wrong))
            if 'loss' in what:
                ck.check(truth['packets']['lost_by_design'] > 0,
                         f'{what}: responder data segments were left out',
                         str(truth['packets']['lost_by_design']))
    print(f'{ck.passed} passed, {ck.failed} failed, {ck.skipped} skipped')
    return 1 if ck.failed else 0


if __name__ == '__main__':
    sys.exit(main())
