#!/usr/bin/env python3
"""tools/capacity/run.py end to end, in a short mode: the rate search over memif runs, prints
its table, finds a zero-loss rate, checks closetap's totals against the ground truth at that
rate, and writes capacity.json and capacity.png. Skipped without matplotlib or root.

usage: test_capacity.py BUILD_DIR"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..'))
from testlib import Checker  # noqa: E402

RUN = os.path.join(HERE, '..', '..', 'tools', 'capacity', 'run.py')


def main():
    build = sys.argv[1]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        # run.py falls back to Debian's interpreter, where python3-matplotlib installs itself
        if subprocess.run(['/usr/bin/python3', '-c', 'import matplotlib'],
                          capture_output=True).returncode != 0:
            print('SKIP python3-matplotlib is not installed')
            return 77
    if os.geteuid() != 0:
        print('SKIP memif needs root (EAL without hugepages)')
        return 77
    ck = Checker()
    with tempfile.TemporaryDirectory(prefix='ctg-cap-') as wd:
        # Short trials and a low floor: a sanitizer build or a busy machine lowers the rate
        # found, and the check at that rate still has to be exact.
        r = subprocess.run([sys.executable, RUN, '--build', build, '--out', wd, '--short',
                            '--packets', '30K', '--min-rate', '5K', '--warmup-rate', '50K'],
                           capture_output=True, text=True, timeout=400)
        print(r.stdout)
        ck.check(r.returncode == 0, 'run.py exits 0', r.stderr.strip()[-500:])
        ck.check('offered Mpps' in r.stdout and 'busy %' in r.stdout, 'run.py prints its table')
        png = os.path.join(wd, 'capacity.png')
        ck.check(os.path.exists(png) and open(png, 'rb').read(8) == b'\x89PNG\r\n\x1a\n',
                 'capacity.png is a PNG')
        res = {}
        if os.path.exists(os.path.join(wd, 'capacity.json')):
            res = json.load(open(os.path.join(wd, 'capacity.json')))
        ck.check(res.get('zero_loss_pps', 0) > 0, 'a zero-loss rate was found',
                 str(res.get('zero_loss_pps')))
        ck.check(res.get('truth_equal') is True,
                 "closetap's totals equal the truth at that rate")
        trials = res.get('trials', [])
        # The unpaced trial and the check at the rate found; the search between them only runs
        # when the unpaced trial lost packets (a closetap that keeps up needs no search).
        ck.check(len(trials) >= 2 and all(t['sent'] + t['not_sent'] == t['offered']
                                          for t in trials),
                 'every trial accounts for every packet offered', f'{len(trials)} trials')
    print(f'{ck.passed} passed, {ck.failed} failed, {ck.skipped} skipped')
    return 1 if ck.failed else 0


if __name__ == '__main__':
    sys.exit(main())
