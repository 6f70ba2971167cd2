#!/usr/bin/env python3
"""Sends N requests for PATH at once to 127.0.0.1:PORT, each on its own connection, and
prints the server's RSS (from /proc/PID/status) before, while all N wait in the server, and
the growth per request; then reads every answer and checks it is a 200.

    scripts/waiting-requests.py N PORT PID PATH
"""
import socket
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS")


def main():
    n, port, pid, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    before = rss_kib(pid)
    conns = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        conns.append(s)
    # The requests wait in the server for PATH's time; sample the peak while they do.
    peak = before
    end = time.time() + 1.0
    while time.time() < end:
        peak = max(peak, rss_kib(pid))
        time.sleep(0.02)
    ok = 0
    for s in conns:
        s.settimeout(60)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        ok += data.startswith(b"HTTP/1.1 200")
        s.close()
    print(f"{n} waiting requests: rss {before} KiB -> peak {peak} KiB, "
          f"{(peak - before) / n:.1f} KiB per request; {ok}/{n} answered 200")


if __name__ == "__main__":
    main()
