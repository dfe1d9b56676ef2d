"""closetap-gen and closetap together: one trial over a pcap file or memif, the comparison of
closetap's totals with the generator's ground truth. Used by tools/capacity/run.py and the tests
in tests/gen/ (stdlib only)."""
import collections
import json
import os
import re
import signal
import subprocess
import time

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_prom(text):
    """{name: [(labels dict, value)]} from Prometheus text exposition."""
    out = collections.defaultdict(list)
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        m = SAMPLE.match(line)
        if m:
            out[m.group(1)].append((dict(LABEL.findall(m.group(3) or '')), float(m.group(4))))
    return out


def total(prom, name, **want):
    return sum(v for labels, v in prom.get(name, [])
               if all(labels.get(k) == x for k, x in want.items()))


def closes_from_metrics(prom):
    return {(l['close'], l['initiator']): int(v)
            for l, v in prom.get('closetap_tcp_closes_total', []) if v}


def closes_from_connlog(path):
    c = collections.Counter()
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            c[(r['close'], r['initiator'])] += 1
    return dict(c)


def closes_from_truth(truth):
    return {(close, init): n for close, by in truth['closes'].items()
            for init, n in by.items() if n}


def diff(expected, got):
    """'' when equal, else the differing cells."""
    keys = sorted(set(expected) | set(got))
    bad = [f'{c}/{i}: truth {expected.get((c, i), 0)} closetap {got.get((c, i), 0)}'
           for c, i in keys if expected.get((c, i), 0) != got.get((c, i), 0)]
    return '; '.join(bad)


def run(cmd, timeout, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, **kw)


def gen_to_pcap(gen, workdir, name, gen_args, timeout=120):
    """closetap-gen --pcap-out; returns (pcap path, truth dict)."""
    pcap = os.path.join(workdir, name + '.pcap')
    truth = os.path.join(workdir, name + '.truth.json')
    r = run([gen, '--pcap-out', pcap, '--truth', truth, '--quiet'] + gen_args, timeout)
    if r.returncode != 0:
        raise RuntimeError(f'closetap-gen {" ".join(gen_args)}: exit {r.returncode}: '
                           f'{r.stderr.strip()}')
    with open(truth) as f:
        return pcap, json.load(f)


def closetap_pcap(closetap, workdir, name, pcap, extra=(), timeout=120):
    """closetap --pcap; returns (metrics dict, conn-log closes)."""
    m = os.path.join(workdir, name + '.prom')
    c = os.path.join(workdir, name + '.jsonl')
    r = run([closetap, '--pcap', pcap, '--metrics-file', m, '--conn-log', c, '--quiet']
            + list(extra), timeout)
    if r.returncode != 0:
        raise RuntimeError(f'closetap --pcap {pcap}: exit {r.returncode}: {r.stderr.strip()}')
    with open(m) as f:
        return parse_prom(f.read()), closes_from_connlog(c)


def default_cpus():
    """(closetap control, closetap worker, generator): the worker alone on the second CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1], cpus[0]) if len(cpus) > 1 else (cpus[0],) * 3


def stop(p):
    """SIGINT, once: closetap's clean stop (a second would be "stop at once")."""
    if p.poll() is None and not getattr(p, 'stopping', False):
        p.stopping = True
        p.send_signal(signal.SIGINT)


class MemifTrial:
    """closetap (memif server, its worker alone on a CPU) and closetap-gen (memif client) on this
    host, both --no-huge; one trial of `gen_args` per call. With `gen_eal` and `closetap_eal`
    (e.g. ['-l', '2', '-a', '0000:3b:00.0']) the two run on whatever ports those name instead,
    e.g. two NIC ports joined by a cable; closetap then gets `settle_s` to start."""

    def __init__(self, gen, closetap, workdir, tag, cpus=None, closetap_args=(), bound_s=300,
                 ring_log2=12, gen_eal=None, closetap_eal=None, settle_s=3.0, linger_ms=1000):
        self.gen, self.closetap, self.workdir, self.tag = gen, closetap, workdir, tag
        self.cpus = cpus or default_cpus()
        self.closetap_args = list(closetap_args)
        self.bound_s = bound_s
        self.ring_log2 = ring_log2  # memif ring: 2^12 slots, as a NIC's 4096 rx descriptors
        self.n = 0
        self.linger_ms = linger_ms  # the generator's port stays up while closetap drains the ring
        self.gen_eal, self.closetap_eal, self.settle_s = gen_eal, closetap_eal, settle_s

    def __call__(self, gen_args, timeout=300):
        self.n += 1
        name = f'{self.tag}-{self.n}'
        sock = f'/tmp/ctg-{os.getpid()}-{name}.sock'
        prom = os.path.join(self.workdir, name + '.prom')
        clog = os.path.join(self.workdir, name + '.jsonl')
        truth_path = os.path.join(self.workdir, name + '.truth.json')
        ctl, wrk, gcpu = self.cpus
        memif = f'socket={sock},socket-abstract=no,rsize={self.ring_log2}'
        ct_eal = self.closetap_eal or ['--lcores', f'0@{ctl},1@{wrk}',
                                       '--vdev', f'net_memif0,role=server,{memif}']
        gen_eal = self.gen_eal or ['--lcores', f'0@{gcpu}',
                                   '--vdev', f'net_memif0,role=client,{memif}']
        ct = subprocess.Popen(
            [self.closetap] + ct_eal + ['--',
             '--duration', str(self.bound_s), '--metrics-file', prom, '--conn-log', clog,
             '--quiet'] + self.closetap_args,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 30
            if self.closetap_eal:
                time.sleep(self.settle_s)
            while not self.closetap_eal and not os.path.exists(sock):
                if ct.poll() is not None or time.time() > deadline:
                    raise RuntimeError('closetap (memif server) did not start: '
                                       + (ct.communicate(timeout=10)[1].strip()
                                          if ct.poll() is not None else 'no socket'))
                time.sleep(0.05)
            # closetap stops before the generator leaves: when a memif client goes, DPDK
            # 22.11's net_memif in closetap unmaps the rings from its interrupt thread while the
            # worker may be inside rx_burst (a SEGV, seen under ASan). So the generator lingers,
            # port up, until closetap is gone (it ends its linger when the link goes down); its
            # truth file appears once the last packet is out.
            linger_ms = self.linger_ms if self.gen_eal else 60000
            g = subprocess.Popen([self.gen] + gen_eal + ['--', '--truth', truth_path, '--quiet',
                                                     '--linger-ms', str(linger_ms)] + gen_args,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                deadline = time.time() + timeout
                while not os.path.exists(truth_path) and g.poll() is None:
                    if time.time() > deadline:
                        raise subprocess.TimeoutExpired(self.gen, timeout)
                    time.sleep(0.02)
                if g.poll() is None and not self.gen_eal:
                    time.sleep(self.linger_ms / 1000)  # closetap drains the ring
                    stop(ct)
                _, gerr = g.communicate(timeout=60 if g.poll() is None else None)
            finally:
                if g.poll() is None:
                    g.kill()
                    g.communicate()
            if g.returncode not in (0, 3):  # 3: some lifecycle packets were not sent
                raise RuntimeError(f'closetap-gen: exit {g.returncode}: {gerr.strip()}')
            with open(truth_path) as f:
                truth = json.load(f)
        finally:
            if ct.poll() is None:
                time.sleep(0.3)  # closetap empties its queue
                stop(ct)
            try:
                _, err = ct.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                ct.kill()
                _, err = ct.communicate()
            if os.path.exists(sock):
                os.unlink(sock)
        if ct.returncode != 0:
            raise RuntimeError(f'closetap: exit {ct.returncode}: {err.strip()}')
        with open(prom) as f:
            metrics = parse_prom(f.read())
        return summarize(truth, metrics, closes_from_connlog(clog))


def summarize(truth, metrics, connlog):
    p = truth['packets']
    rx = total(metrics, 'closetap_rx_packets_total')
    drops = total(metrics, 'closetap_rx_dropped_packets_total')
    busy = total(metrics, 'closetap_worker_busy_cycles_total')
    lost = p['not_sent'] + max(0, p['sent'] - rx) + drops
    t = closes_from_truth(truth)
    d_metrics = diff(t, closes_from_metrics(metrics))
    d_log = diff(t, connlog)
    return {
        'offered_pps': truth['target_pps'],
        'achieved_pps': truth['steady_achieved_pps'],
        'offered': p['offered'], 'sent': p['sent'], 'not_sent': p['not_sent'],
        'rx': int(rx), 'drops': int(drops),
        'loss_pct': 100.0 * lost / p['offered'] if p['offered'] else 0.0,
        'zero_loss': p['not_sent'] == 0 and int(rx) == p['sent'] and drops == 0,
        # closetap's worker cycles on bursts that carried packets, per packet, and the share of
        # one CPU that cost is at the trial's steady rate.
        'cycles_per_pkt': busy / rx if rx else 0.0,
        'busy_pct': 100.0 * (busy / rx if rx else 0) * truth['steady_achieved_pps'] / truth['tsc_hz'],
        'truth_exact': truth['truth_exact'],
        'truth_match': truth['truth_exact'] and not d_metrics and not d_log,
        'truth_diff': d_metrics or d_log,
        'connections': truth['connections'],
    }
