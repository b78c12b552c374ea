#!/usr/bin/env python3
"""Drives the balancer's lease/report cycle, one cycle at a time, for instruction counting.

Usage: bench/cycle_client.py PORT CYCLES

Each cycle is a client's `GET /` (curl's headers) on one keep-alive connection, answered 302 with a
lease, then the server's report `GET /port_update/<port>?lease=<token>` (the factorial server's
headers, `Prefer: return=minimal` among them) on a second keep-alive connection, answered 204.
Every answer is checked; any other status stops the run with exit code 1.
"""
import re
import socket
import sys


class Connection:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def exchange(self, request):
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        found = re.search(rb"(?i)content-length: *(\d+)", head)
        length = int(found.group(1)) if found else 0  # a 204 has no Content-Length
        while len(rest) < length:
            self._read()
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
        self.buffer = rest[length:]
        return head.decode(), rest[:length]

    def _read(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            sys.exit("the balancer closed the connection")
        self.buffer += chunk


def main():
    port, cycles = int(sys.argv[1]), int(sys.argv[2])
    client = Connection(port)
    reporter = Connection(port)
    ask = (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: curl/7.88.1\r\n"
        "Accept: */*\r\n\r\n"
    ).encode()
    location = re.compile(r"(?i)\r\nlocation: http://[^:/]+:(\d+)/\d+\?(?:.*&)?lease=([0-9a-f]+)")
    for _ in range(cycles):
        head, _ = client.exchange(ask)
        found = location.search(head)
        if not head.startswith("HTTP/1.1 302") or not found:
            sys.exit(f"GET / answered: {head!r}")
        server, lease = found.groups()
        report = (
            f"GET /port_update/{server}?lease={lease} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Prefer: return=minimal\r\n\r\n"
        ).encode()
        head, _ = reporter.exchange(report)
        if not head.startswith("HTTP/1.1 204"):
            sys.exit(f"report answered: {head!r}")


if __name__ == "__main__":
    main()
