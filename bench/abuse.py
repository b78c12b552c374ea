#!/usr/bin/env python3
"""Hostile but cheap clients against the real programs; prints one figure per line.
Usage: abuse.py BIN_DIR WORK_DIR. Each scenario starts its own processes on free ports and
stops them; every loop is bounded in time."""
import asyncio, json, os, resource, socket, subprocess, sys, time

BIN, WORK = sys.argv[1], sys.argv[2]

# Times GET /health every 10 ms for SECONDS, in a process of its own; prints the milliseconds.
PROBE = """
import socket, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
end = time.time() + seconds
out = []
while time.time() < end:
    t = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.sendall(b"GET /health HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
    while s.recv(65536): pass
    s.close()
    out.append((time.perf_counter() - t) * 1000)
    time.sleep(0.01)
print(" ".join(f"{x:.2f}" for x in out))
"""

def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks: s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks: s.close()
    return ports

def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"): return int(line.split()[1]) / 1024
    return 0.0

async def get(port, path, timeout=5):
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), timeout)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode(errors="replace")

async def health_latencies(port, seconds, out):
    end = time.time() + seconds
    while time.time() < end:
        started = time.perf_counter()
        try:
            await get(port, "/health", timeout=2)
            out.append((time.perf_counter() - started) * 1000)
        except Exception:
            out.append(2000.0)
        await asyncio.sleep(0.05)

def p99(values):
    values = sorted(values)
    return values[min(len(values) - 1, int(0.99 * len(values)))] if values else float("nan")

def start_balancer(extra=(), servers=1, spawn=False, preexec=None):
    ports = free_ports(servers + 1)
    config = os.path.join(WORK, f"servers-{ports[0]}.json")
    json.dump({"available_servers": [str(p) for p in ports[1:]]}, open(config, "w"))
    args = [f"{BIN}/balancer", "--port", str(ports[0]), "--config", config, "--quiet", *extra]
    if not spawn: args.append("--no-spawn")
    log = open(os.path.join(WORK, f"balancer-{ports[0]}.log"), "w")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", ports[0]), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return process, ports[0], ports[1:], log.name

async def flood_empty_lines(port, seconds):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    chunk = b"\r\n" * 32768
    end = time.time() + seconds
    sent = 0
    try:
        while time.time() < end:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
    except Exception:
        pass
    writer.close()
    return sent

async def scenario_empty_lines():
    process, port, _, _ = start_balancer()
    try:
        before = rss_mb(process.pid)
        latencies = []
        floods = [flood_empty_lines(port, 8) for _ in range(4)]
        results = await asyncio.gather(health_latencies(port, 8, latencies), *floods)
        print(f"empty-line flood: 4 connections for 8 s sent {sum(results[1:]) / 1e6:.1f} MB;"
              f" balancer RSS {before:.1f} -> {rss_mb(process.pid):.1f} MB (target < 100);"
              f" /health p99 {p99(latencies):.1f} ms over {len(latencies)} probes (target < 20)")
    finally:
        process.kill(); process.wait()

async def waiter_with_body(port, body):
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        writer.write(body)
        await writer.drain()
        return reader, writer
    except Exception:
        return None

async def scenario_bodies():
    process, port, _, _ = start_balancer(["--max-waiting", "20000"])
    try:
        await get(port, "/")  # the only server is taken: everyone else would wait
        before = rss_mb(process.pid)
        body = b"x" * (1 << 20)
        held, peak = [], before
        for start in range(0, 10000, 250):
            batch = await asyncio.gather(*[waiter_with_body(port, body) for _ in range(250)])
            held += [c for c in batch if c]
            peak = max(peak, rss_mb(process.pid))
        # Each is refused (413) and closed at once; a client still writing its body may see the
        # close as a reset before it reads the 413.
        closed = 0
        for reader, writer in held[:200]:
            try:
                await asyncio.wait_for(reader.read(), 2)
                closed += 1
            except (ConnectionError, asyncio.IncompleteReadError):
                closed += 1
            except Exception:
                pass
        print(f"10,000 waiters each sending a 1 MiB body: {closed}/200 sampled were refused and closed"
              f" (none waits);"
              f" balancer RSS {before:.1f} -> peak {peak:.1f} MB (target < 100)")
        for _, writer in held: writer.close()
    finally:
        process.kill(); process.wait()

async def scenario_disconnect():
    process, port, _, _ = start_balancer(["--max-waiting", "20000"])
    try:
        await get(port, "/")
        clients = []
        for start in range(0, 10000, 500):
            batch = await asyncio.gather(*[asyncio.open_connection("127.0.0.1", port) for _ in range(500)])
            for reader, writer in batch:
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            clients += batch
        deadline = time.time() + 60
        while time.time() < deadline:
            status, text = await get(port, "/health")
            if json.loads(text)["waiting"] == 10000: break
            await asyncio.sleep(0.1)
        # /health is timed by a process of its own: this one is busy tearing down 10,000 sockets.
        prober = subprocess.Popen([sys.executable, "-c", PROBE, str(port), "3"],
                                  stdout=subprocess.PIPE, text=True)
        await asyncio.sleep(0.5)
        started = time.perf_counter()
        for _, writer in clients: writer.transport.abort()
        emptied = None
        while time.perf_counter() - started < 10:
            status, text = await get(port, "/health")
            if json.loads(text)["waiting"] == 0:
                emptied = time.perf_counter() - started
                break
        latencies = [float(x) for x in prober.communicate(timeout=30)[0].split()]
        print(f"10,000 waiters leaving at once: line empty after {emptied * 1000:.0f} ms (as this"
              f" client saw it); /health from another process every 10 ms: max {max(latencies):.1f} ms,"
              f" p99 {p99(latencies):.1f} ms over {len(latencies)} probes (target < 20)")
    finally:
        process.kill(); process.wait()

async def scenario_factorial_flood():
    port, = free_ports(1)
    server = subprocess.Popen([f"{BIN}/factorial-server", "--port", str(port), "--quiet"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close(); break
            except OSError:
                time.sleep(0.05)
        async def hit_and_run():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET /?n=100000 HTTP/1.1\r\nHost: x\r\n\r\n")
                await writer.drain()
                writer.transport.abort()
            except Exception:
                pass
        for start in range(0, 2000, 250):
            await asyncio.gather(*[hit_and_run() for _ in range(250)])
        started = time.perf_counter()
        status, body = await get(port, "/?n=10", timeout=30)
        print(f"2,000 connections asking n=100000 and leaving: then ?n=10 answered {status} in"
              f" {(time.perf_counter() - started) * 1000:.0f} ms (target < 2000): {body.strip()}")
    finally:
        server.kill(); server.wait()

async def scenario_descriptors():
    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    process, port, servers, log = start_balancer(["--heartbeat-interval", "1"], servers=3,
                                                 spawn=True, preexec=low_limit)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if json.loads((await get(port, "/health"))[1])["free"] == 3: break
            except Exception:
                pass
            await asyncio.sleep(0.2)
        idle = []
        for _ in range(400):
            try:
                idle.append(await asyncio.open_connection("127.0.0.1", port))
            except Exception:
                pass
        await asyncio.sleep(20)
        text = open(log).read()
        downs = text.count(": down")
        kills = text.count("does not answer: killing")
        for _, writer in idle: writer.close()
        await asyncio.sleep(0.5)
        free = json.loads((await get(port, "/health"))[1])["free"]
        print(f"ulimit -n 256, 400 idle connections for 20 s: {downs} servers marked down,"
              f" {kills} killed (target 0 and 0); free servers afterwards {free}/3")
    finally:
        process.terminate()
        try: process.wait(10)
        except Exception: process.kill(); process.wait()

async def main():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    which = sys.argv[3:] or ["empty-lines", "bodies", "disconnect", "factorial", "descriptors"]
    scenarios = {"empty-lines": scenario_empty_lines, "bodies": scenario_bodies,
                 "disconnect": scenario_disconnect, "factorial": scenario_factorial_flood,
                 "descriptors": scenario_descriptors}
    for name in which:
        await scenarios[name]()

asyncio.run(main())
