#!/usr/bin/env python3
"""Opens N keep-alive connections to 127.0.0.1:PORT, sends one request on each, leaves them
idle, and prints the server's RSS (from /proc/PID/status) before and while they are open.

    scripts/idle-connections.py N PORT PID
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
    n, port, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    before = rss_kib(pid)
    conns = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = s.recv(4096)
        if not data.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"unexpected answer: {data[:80]!r}")
        conns.append(s)
    time.sleep(1)
    during = rss_kib(pid)
    alive = 0
    for s in conns:
        s.setblocking(False)
        try:
            alive += 1 if s.recv(1) else 0
        except BlockingIOError:
            alive += 1
    print(f"  {n} idle connections (alive after 1 s: {alive}): RSS {before} KiB -> {during} KiB "
          f"(+{(during - before) / 1024:.1f} MiB, {(during - before) * 1024 / n:.0f} B per connection)")
    for s in conns:
        s.close()


if __name__ == "__main__":
    main()
