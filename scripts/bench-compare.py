#!/usr/bin/env python3
"""Compare one package's benchmarks at two commits, side by side in one run.

    scripts/bench-compare.py OLD NEW PKG SUB... [--rounds R] [--n N]

Builds PKG's test binary at each commit (from `git archive`, outside the
work tree), then runs every sub-benchmark SUB (a -test.bench pattern) at a
fixed N iterations, alternating which commit goes first each round, so that
the shared machine's noise falls on both alike. Reports per run and as the
median of the pairwise NEW/OLD ratios: the CPU the whole process used per
iteration (user+sys, setup included — steadier than wall time under load),
the benchmark's own ns/op, and allocs/op.
"""
import argparse, os, re, statistics, subprocess, sys, tempfile

ap = argparse.ArgumentParser()
ap.add_argument("old"); ap.add_argument("new"); ap.add_argument("pkg"); ap.add_argument("subs", nargs="+")
ap.add_argument("--rounds", type=int, default=8); ap.add_argument("--n", type=int, default=20000)
a = ap.parse_args()
tmp = tempfile.mkdtemp(prefix="bench-compare-")
dirs, bins = {}, {}
for name, rev in (("old", a.old), ("new", a.new)):
    dirs[name] = os.path.join(tmp, name)
    os.makedirs(dirs[name])
    subprocess.run("git archive %s | tar -x -C %s" % (rev, dirs[name]), shell=True, check=True)
    bins[name] = os.path.join(tmp, name + ".test")
    subprocess.run(["go", "test", "-c", "-o", bins[name], a.pkg], cwd=dirs[name], check=True)
line = re.compile(r"\s(\d+(?:\.\d+)?) ns/op.*?(\d+) allocs/op")
res = {}
for r in range(a.rounds):
    for sub in a.subs:
        for name in (("old", "new") if r % 2 == 0 else ("new", "old")):
            p = subprocess.Popen([bins[name], "-test.run", "^$", "-test.bench", sub, "-test.benchmem", "-test.benchtime", "%dx" % a.n],
                                 cwd=os.path.join(dirs[name], a.pkg), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            out = p.stdout.read().decode()
            _, status, ru = os.wait4(p.pid, 0)
            m = line.search(out)
            if status != 0 or not m:
                sys.exit("%s %s failed:\n%s" % (name, sub, out))
            cpu = (ru.ru_utime + ru.ru_stime) / a.n * 1e6
            res.setdefault((sub, name), []).append((cpu, float(m.group(1)) / 1000, int(m.group(2))))
            print("round %d %-8s %-3s  CPU %7.1f µs/op  wall %7.1f µs/op  %s allocs/op" % (r, sub, name, cpu, float(m.group(1)) / 1000, m.group(2)), flush=True)
med = statistics.median
for sub in a.subs:
    o, n = res[(sub, "old")], res[(sub, "new")]
    for i, what in ((0, "CPU"), (1, "wall")):
        ratios = sorted(y[i] / x[i] for x, y in zip(o, n))
        print("%s %s µs/op: old %.1f new %.1f; new/old pairwise median %.2f (%.2f–%.2f)" % (
            sub, what, med(x[i] for x in o), med(y[i] for y in n), med(ratios), ratios[0], ratios[-1]))
    print("%s allocs/op: old %s new %s" % (sub, sorted({x[2] for x in o}), sorted({y[2] for y in n})))
