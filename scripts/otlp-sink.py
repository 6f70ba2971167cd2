#!/usr/bin/env python3
"""A local OTLP/HTTP endpoint for benchmarks: takes every POST (traces, metrics, logs) with
200 and an empty protobuf body, counts the requests and bytes, and prints them when stopped.
It does not decode: the tests' receiver (tests/serve/otlp.rs) checks what is sent; this one
only stands where a collector would, so that export does its real work.

    scripts/otlp-sink.py PORT
"""
import http.server
import signal
import sys
import threading

stats = {"requests": 0, "bytes": 0}
lock = threading.Lock()


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("content-length", "0"))
        self.rfile.read(n)
        with lock:
            stats["requests"] += 1
            stats["bytes"] += n
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main():
    port = int(sys.argv[1])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Sink)

    def stop(*_):
        print(f"otlp-sink: {stats['requests']} exports, {stats['bytes']} bytes", file=sys.stderr)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever()


if __name__ == "__main__":
    main()
