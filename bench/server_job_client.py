#!/usr/bin/env python3
"""Drives a factorial server one job at a time, for instruction counting (bench/callgrind-server.sh).

Usage: bench/server_job_client.py leased BALANCER_PORT JOBS N
       bench/server_job_client.py direct SERVER_PORT JOBS N

leased: each job is `GET /?n=N` at the balancer, answered 302 with a lease, then the Location at the
server (which answers, then reports the lease to the balancer). direct: each job is `GET /?n=N` at
the server itself, no lease and no report. Keep-alive connections; every answer is checked (status
and `Factorial of N = `); anything else stops the run with exit code 1.
"""
import http.client
import sys
from urllib.parse import urlsplit


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("leased", "direct"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    mode, port, jobs, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    connections = {}

    def get(port, path):
        connection = connections.get(port)
        if connection is None:
            connection = connections[port] = http.client.HTTPConnection("127.0.0.1", port)
        connection.request("GET", path)
        response = connection.getresponse()
        return response, response.read()

    expected = f"Factorial of {n} = ".encode()
    for _ in range(jobs):
        response, body = get(port, f"/?n={n}")
        if mode == "leased":
            if response.status != 302:
                sys.exit(f"the balancer answered {response.status}: {body[:80]!r}")
            location = urlsplit(response.getheader("Location"))
            response, body = get(location.port, f"{location.path}?{location.query}")
        if response.status != 200 or not body.startswith(expected):
            sys.exit(f"the server answered {response.status}: {body[:80]!r}")


if __name__ == "__main__":
    main()
