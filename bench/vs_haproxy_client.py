#!/usr/bin/env python3
"""Helper of bench/vs-haproxy.sh: the job list, the measured client run, the idle sample, the
answer check and the table. Reads CPU time from /proc/<pid>/stat (utime + stime of the whole
process, every thread) and the client's from its rusage (os.wait4).

  urls SEED JOBS FILE             write JOBS random n in 100...1000 (seeded), one a line
  check PORT NFILE COUNT          curl -s -L the first COUNT jobs through 127.0.0.1:PORT, compare
                                  the digits with math.factorial
  run NAME ROUND PORT NFILE FRONT_PID SERVER_PID... measure one client run, print one JSON line
  direct ROUND NFILE PORTS SERVER_PID...            the servers alone: one sequential curl per
                                  server (PORTS comma-separated), the jobs dealt in turn,
                                  `GET /?n=K`, no front and no report; print one JSON line
  idle NAME ROUND SECONDS FRONT_PID SERVER_PID...   CPU while idle, print one JSON line
  line                            one JSON line on stdin as a line for people
  table RESULTS_FILE              medians of the runs, ratios, idle CPU
"""

import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PARALLEL = 32


def cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime field 14, stime field 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def per_thread(pid, name):
    """The text of /proc/<pid>/task/<tid>/<name> for each live thread of a process (a thread that
    ends while they are read is skipped)."""
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/{name}") as f:
                yield f.read()
        except FileNotFoundError:
            pass


def run_ns(pid):
    """Time on CPU of a process's live threads, in nanoseconds (/proc/<pid>/task/*/schedstat):
    /proc/<pid>/stat counts in clock ticks (10 ms), too coarse for a few idle seconds."""
    return sum(int(text.split()[0]) for text in per_thread(pid, "schedstat"))


def context_switches(pid):
    """Voluntary and involuntary context switches of a process's live threads: each voluntary
    one is the process going to sleep (in epoll_wait, say) to be woken again later."""
    return sum(
        int(line.split()[1])
        for text in per_thread(pid, "status")
        for line in text.splitlines()
        if "ctxt_switches" in line
    )


def machine_busy():
    """(busy, steal) seconds of the whole machine, over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / CLK_TCK, v[7] / CLK_TCK


def expected_body(n):
    return f"Factorial of {n} = {math.factorial(n)}\n"


def read_ns(path):
    with open(path) as f:
        return [int(line) for line in f if line.strip()]


def cmd_urls(seed, jobs, path):
    rng = random.Random(int(seed))
    with open(path, "w") as f:
        for _ in range(int(jobs)):
            f.write(f"{rng.randint(100, 1000)}\n")


def cmd_check(port, nfile, count):
    ns = read_ns(nfile)[: int(count)]
    bad = 0
    for n in ns:
        url = f"http://127.0.0.1:{port}/?n={n}"
        out = subprocess.run(
            ["curl", "-s", "-L", "--max-time", "10", url], capture_output=True, timeout=15
        ).stdout.decode(errors="replace")
        if out != expected_body(n):
            bad += 1
            print(f"  wrong answer for {url}: {out[:80]!r}", file=sys.stderr)
    if bad:
        print(f"check: {bad} of {len(ns)} answers wrong through port {port}", file=sys.stderr)
        sys.exit(1)


def count_answers(out_paths, sizes, redirects):
    """(good, bad, codes) over curl's `-w "%{http_code} %{num_redirects} %{size_download} %{url}"`
    lines: an answer is good if it is 200, took `redirects` redirects and has the exact size of
    `Factorial of K = <digits>` for the K of its URL."""
    good = bad = 0
    codes = {}
    for path in out_paths:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) != 4:
                    bad += 1
                    continue
                code, hops, size, url = parts
                codes[code] = codes.get(code, 0) + 1
                try:
                    right = int(hops) == redirects and int(size) == sizes[int(url.rsplit("n=", 1)[1])]
                except (ValueError, KeyError, IndexError):
                    right = False
                if code == "200" and right:
                    good += 1
                else:
                    bad += 1
    return good, bad, codes


def cmd_run(name, round_, port, nfile, front, *servers):
    ns = read_ns(nfile)
    sizes = {n: len(expected_body(n).encode()) for n in set(ns)}
    with tempfile.NamedTemporaryFile("w", suffix=".curlrc", delete=False) as cfg:
        for n in ns:
            cfg.write(f'url = "http://127.0.0.1:{port}/?n={n}"\noutput = "/dev/null"\n')
        cfg_path = cfg.name
    out_path = cfg_path + ".out"
    argv = [
        "curl", "-s", "-L", "--parallel", "--parallel-max", str(PARALLEL),
        "--max-time", "60", "-w", "%{http_code} %{num_redirects} %{size_download} %{url}\\n",
        "-K", cfg_path,
    ]  # fmt: skip
    pids = [int(front)] + [int(s) for s in servers]
    before = [cpu_seconds(p) for p in pids]
    switches_before = [context_switches(p) for p in pids]
    busy_before, steal_before = machine_busy()
    started = time.monotonic()
    with open(out_path, "w") as out:
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL)

        def stop(signum, frame):
            # The script is cleaning up: take the client along.
            child.kill()
            sys.exit(128 + signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        deadline = started + max(120.0, len(ns) * 0.05)
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                child.kill()
                pid, status, usage = os.wait4(child.pid, 0)
                print(f"{name}: the client ran out of time", file=sys.stderr)
                break
            time.sleep(0.005)
    wall = time.monotonic() - started
    after = [cpu_seconds(p) for p in pids]
    switches = [context_switches(p) - b for p, b in zip(pids, switches_before)]
    busy_after, steal_after = machine_busy()
    # Every answer: 200, the right number of redirects, the size of the exact factorial.
    redirects = 1 if name == "balancer" else 0
    good, bad, codes = count_answers([out_path], sizes, redirects)
    os.unlink(cfg_path)
    os.unlink(out_path)
    jobs = len(ns)
    front_cpu = after[0] - before[0]
    server_cpu = sum(after[1:]) - sum(before[1:])
    client_cpu = usage.ru_utime + usage.ru_stime
    result = {
        "kind": "run", "name": name, "round": int(round_), "jobs": jobs, "good": good,
        "bad": bad + (jobs - good - bad), "codes": codes, "exit": os.waitstatus_to_exitcode(status),
        "wall": wall, "jobs_per_s": good / wall,
        "front_us": front_cpu * 1e6 / jobs, "servers_us": server_cpu * 1e6 / jobs,
        "client_us": client_cpu * 1e6 / jobs,
        "front_switches": switches[0] / jobs, "servers_switches": sum(switches[1:]) / jobs,
        "per_server_us": [(a - b) * 1e6 / jobs for a, b in zip(after[1:], before[1:])],
        # What the rest of the machine used meanwhile, in CPUs: someone compiling shows here.
        "others_cpus": max(0.0, (busy_after - busy_before) - front_cpu - server_cpu - client_cpu) / wall,
        "steal_cpus": (steal_after - steal_before) / wall,
    }  # fmt: skip
    print(json.dumps(result))


def cmd_direct(round_, nfile, ports, *servers):
    """The same jobs straight to the servers, each server asked by a curl of its own, one job at
    a time (as behind the balancer or HAProxy's maxconn 1): what a server costs per job
    without the report and without a lease."""
    ns = read_ns(nfile)
    ports = ports.split(",")
    sizes = {n: len(expected_body(n).encode()) for n in set(ns)}
    paths = []
    for i, port in enumerate(ports):
        with tempfile.NamedTemporaryFile("w", suffix=".curlrc", delete=False) as cfg:
            for n in ns[i :: len(ports)]:
                cfg.write(f'url = "http://127.0.0.1:{port}/?n={n}"\noutput = "/dev/null"\n')
            paths.append(cfg.name)
    pids = [int(s) for s in servers]
    before = [cpu_seconds(p) for p in pids]
    switches_before = [context_switches(p) for p in pids]
    busy_before, steal_before = machine_busy()
    started = time.monotonic()
    children = []
    for path in paths:
        argv = [
            "curl", "-s", "--max-time", "60",
            "-w", "%{http_code} %{num_redirects} %{size_download} %{url}\\n", "-K", path,
        ]  # fmt: skip
        out = open(path + ".out", "w")
        children.append((subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL), out))

    def stop(signum, frame):
        for child, _ in children:
            child.kill()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    client_cpu = 0.0
    exit_code = 0
    for child, out in children:
        _, status, usage = os.wait4(child.pid, 0)
        out.close()
        client_cpu += usage.ru_utime + usage.ru_stime
        exit_code = exit_code or os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    after = [cpu_seconds(p) for p in pids]
    switches = [context_switches(p) - b for p, b in zip(pids, switches_before)]
    busy_after, steal_after = machine_busy()
    good, bad, codes = count_answers([path + ".out" for path in paths], sizes, 0)
    for path in paths:
        os.unlink(path)
        os.unlink(path + ".out")
    jobs = len(ns)
    server_cpu = sum(after) - sum(before)
    result = {
        "kind": "run", "name": "direct", "round": int(round_), "jobs": jobs, "good": good,
        "bad": bad + (jobs - good - bad), "codes": codes, "exit": exit_code,
        "wall": wall, "jobs_per_s": good / wall,
        "front_us": 0.0, "servers_us": server_cpu * 1e6 / jobs,
        "client_us": client_cpu * 1e6 / jobs,
        "front_switches": 0.0, "servers_switches": sum(switches) / jobs,
        "per_server_us": [(a - b) * 1e6 / jobs for a, b in zip(after, before)],
        "others_cpus": max(0.0, (busy_after - busy_before) - server_cpu - client_cpu) / wall,
        "steal_cpus": (steal_after - steal_before) / wall,
    }  # fmt: skip
    print(json.dumps(result))


def cmd_idle(name, round_, seconds, front, *servers):
    pids = [int(front)] + [int(s) for s in servers]
    before = [cpu_seconds(p) for p in pids]
    before_ns = [run_ns(p) for p in pids]
    started = time.monotonic()
    time.sleep(float(seconds))
    wall = time.monotonic() - started
    after = [cpu_seconds(p) for p in pids]
    after_ns = [run_ns(p) for p in pids]
    result = {
        "kind": "idle", "name": name, "round": int(round_), "seconds": wall,
        "front_us_per_s": (after_ns[0] - before_ns[0]) / 1e3 / wall,
        "servers_us_per_s": (sum(after_ns[1:]) - sum(before_ns[1:])) / 1e3 / wall,
        "front_ticks": round((after[0] - before[0]) * CLK_TCK),
        "servers_ticks": round((sum(after[1:]) - sum(before[1:])) * CLK_TCK),
    }  # fmt: skip
    print(json.dumps(result))


def cmd_line():
    """One JSON result on stdin as a line for people; exits 1 if a run had wrong answers."""
    r = json.loads(sys.stdin.read())
    if r["kind"] == "idle":
        print(
            f"round {r['round']}: {r['name']:>8} idle {r['seconds']:.0f} s: front"
            f" {r['front_us_per_s']:,.0f} µs/s, servers {r['servers_us_per_s']:,.0f} µs/s"
        )
        return
    wrong = "" if r["bad"] == 0 else f", WRONG {r['bad']} (codes {r['codes']})"
    print(
        f"round {r['round']}: {r['name']:>8} {r['jobs_per_s']:>7,.0f} jobs/s,"
        f" front {r['front_us']:6.1f} µs/job, servers {r['servers_us']:6.1f} µs/job,"
        f" client {r['client_us']:6.1f} µs/job, context switches/job front"
        f" {r['front_switches']:.2f} servers {r['servers_switches']:.2f},"
        f" {r['good']}/{r['jobs']} right in {r['wall']:.2f} s"
        f" (others used {r['others_cpus']:.2f} CPUs, steal {r['steal_cpus']:.2f})"
        + wrong
    )
    if r["bad"]:
        sys.exit(1)


LABELS = {
    "balancer": "this balancer (302 + report)",
    "haproxy": "HAProxy {version}, maxconn 1, one thread",
    "direct": "no front: five sequential clients, one a server",
}


def cmd_table(path, haproxy_version="2.6"):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    runs = [r for r in rows if r["kind"] == "run"]
    idles = [r for r in rows if r["kind"] == "idle"]
    cols = [
        ("jobs/s", "jobs_per_s", "{:,.0f}"),
        ("front CPU µs/job", "front_us", "{:,.1f}"),
        ("servers µs/job", "servers_us", "{:,.1f}"),
        ("client µs/job", "client_us", "{:,.1f}"),
        ("front context switches/job", "front_switches", "{:.2f}"),
        ("servers context switches/job", "servers_switches", "{:.2f}"),
    ]
    med = {}
    for name in LABELS:
        mine = [r for r in runs if r["name"] == name]
        if mine:
            med[name] = {key: statistics.median(r[key] for r in mine) for _, key, _ in cols}
    rounds = len({r["round"] for r in runs})
    print(f"Medians of {rounds} round(s), {runs[0]['jobs']:,} jobs each:")
    print()
    print("| | " + " | ".join(c for c, _, _ in cols) + " |")
    print("| --- |" + " ---: |" * len(cols))
    for name, label in LABELS.items():
        if name in med:
            cells = [fmt.format(med[name][key]) for _, key, fmt in cols]
            print(f"| {label.format(version=haproxy_version)} | " + " | ".join(cells) + " |")
    if "balancer" in med and "haproxy" in med:
        # Ratios of the medians, and the spread of the per-round ratios where rounds pair up.
        cells = []
        for _, key, _ in cols:
            ratio = med["balancer"][key] / med["haproxy"][key] if med["haproxy"][key] else float("nan")
            per_round = []
            for rnd in sorted({r["round"] for r in runs}):
                b = [r[key] for r in runs if r["round"] == rnd and r["name"] == "balancer"]
                h = [r[key] for r in runs if r["round"] == rnd and r["name"] == "haproxy"]
                if b and h and h[0]:
                    per_round.append(b[0] / h[0])
            spread = f" ({min(per_round):.2f}–{max(per_round):.2f})" if len(per_round) > 1 else ""
            cells.append(f"{ratio:.2f}{spread}")
        print("| ratio balancer/HAProxy | " + " | ".join(cells) + " |")
        print()
        print("(ratio of the medians; in brackets the range of the per-round ratios)")
    if "balancer" in med and "direct" in med:
        # The servers' cost of the report (and of checking the lease): their CPU per job behind
        # the balancer less their CPU per job answering the same jobs alone, round by round.
        per_round = []
        for rnd in sorted({r["round"] for r in runs}):
            b = [r["servers_us"] for r in runs if r["round"] == rnd and r["name"] == "balancer"]
            d = [r["servers_us"] for r in runs if r["round"] == rnd and r["name"] == "direct"]
            if b and d:
                per_round.append(b[0] - d[0])
        if per_round:
            print()
            print(
                "Servers' CPU per job behind the balancer (lease checked, job reported) less the"
                f" same servers' alone: {statistics.median(per_round):+.1f} µs/job (median;"
                f" rounds {', '.join(f'{v:+.1f}' for v in per_round)})"
            )
    if idles:
        print()
        print(
            f"Idle: each system up alone with its five servers, {idles[0]['seconds']:.0f} s in each"
            f" round, median of {rounds} (range):"
        )
        print()
        print("| | front CPU µs/s | servers CPU µs/s (sum of 5) |")
        print("| --- | ---: | ---: |")
        for name, label in LABELS.items():
            mine = [r for r in idles if r["name"] == name]
            if mine:
                cells = []
                for key in ("front_us_per_s", "servers_us_per_s"):
                    values = [r[key] for r in mine]
                    spread = f" ({min(values):,.0f}–{max(values):,.0f})" if len(values) > 1 else ""
                    cells.append(f"{statistics.median(values):,.0f}{spread}")
                print(f"| {label.format(version=haproxy_version)} | " + " | ".join(cells) + " |")
        print()
        print(
            "(from /proc/<pid>/task/*/schedstat, in ns: /proc/<pid>/stat counts"
            f" {1e6 / CLK_TCK:,.0f} µs ticks, too coarse for a few idle seconds)"
        )


if __name__ == "__main__":
    commands = {"urls": cmd_urls, "check": cmd_check, "run": cmd_run, "direct": cmd_direct, "idle": cmd_idle, "line": cmd_line, "table": cmd_table}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    commands[sys.argv[1]](*sys.argv[2:])
