#!/usr/bin/env python3
"""Parks N clients on the balancer (every server taken), then measures the balancer's resident
memory and how fast /health answers meanwhile. Usage: waiting_clients.py PORT PID [N]"""
import asyncio
import json
import sys
import time


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def get(port, path):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data.decode(errors="replace")


def waiting(response):
    """The `waiting` count of a /health response (its fields come in any order), -1 if none."""
    try:
        return json.loads(response.split("\r\n\r\n", 1)[1])["waiting"]
    except (IndexError, ValueError, KeyError):
        return -1


async def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    # Take every free server first (the pool in this run has one).
    taken = await get(port, "/")
    assert taken.startswith("HTTP/1.1 302"), taken
    before = rss_mb(pid)
    connections = []
    for start in range(0, count, 500):
        batch = await asyncio.gather(
            *[asyncio.open_connection("127.0.0.1", port) for _ in range(min(500, count - start))])
        for reader, writer in batch:
            writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        connections.extend(batch)
    await asyncio.gather(*[writer.drain() for _, writer in connections])
    # Wait until the balancer reports every client in line.
    deadline = time.time() + 60
    health = ""
    while time.time() < deadline:
        health = await get(port, "/health")
        if waiting(health) >= count:
            break
        await asyncio.sleep(0.1)
    started = time.perf_counter()
    health = await get(port, "/health")
    health_ms = (time.perf_counter() - started) * 1000
    during = rss_mb(pid)
    answered = sum(1 for reader, _ in connections if reader.at_eof() or len(reader._buffer) > 0)
    print(f"waiting clients:       {count} (health says: {health.strip().split(chr(10))[-1]})")
    print(f"clients answered early: {answered} (expected 0)")
    print(f"balancer RSS before:   {before:.1f} MB")
    print(f"balancer RSS waiting:  {during:.1f} MB (target: under 100 MB)")
    print(f"/health while waiting: {health_ms:.1f} ms")
    for _, writer in connections:
        writer.close()
    await asyncio.sleep(1)
    after = await get(port, "/health")
    print(f"after they all left:   {after.strip().split(chr(10))[-1]}")


asyncio.run(main())
