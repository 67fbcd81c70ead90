#!/usr/bin/env python3
"""Flood a server with large request bodies and report its resident memory.

Opens CONNECTIONS connections to 127.0.0.1:PORT, and on each sends a POST to PATH announcing
a body of SIZE bytes, then all of it but the last byte (--send-seconds at most per connection, default 2), so the
server holds every body it has accepted. Then prints the server's RSS (from /proc/PID/status)
and how many connections had an answer before their last byte, and closes them all.

    python3 scripts/flood.py --port 9797 --path /auspex/v1/alertmanager \
        --connections 100 --size 10000000 --pid "$(pgrep -f 'auspex serve')"

Used for the "request bodies under a flood" figures in BENCHMARKS.md. Standard library only.
"""

import argparse
import socket
import time


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    raise SystemExit(f"error: no VmRSS for pid {pid}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=9797)
    ap.add_argument("--path", default="/auspex/v1/alertmanager")
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--size", type=int, default=10_000_000, help="announced body bytes")
    ap.add_argument("--pid", type=int, required=True, help="the server's process id")
    ap.add_argument("--send-seconds", type=float, default=2.0, help="sending time per connection")
    a = ap.parse_args()
    if a.size < 2 or a.connections < 1:
        raise SystemExit("error: --size must be at least 2 and --connections at least 1")
    print(f"rss_before_mib={rss_mib(a.pid)}")
    chunk = b" " * (1 << 20)
    socks = []
    for _ in range(a.connections):
        s = socket.create_connection(("127.0.0.1", a.port))
        s.sendall(
            f"POST {a.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {a.size}\r\n\r\n".encode()
        )
        s.setblocking(False)
        sent, t0 = 0, time.time()
        try:
            while sent < a.size - 1 and time.time() - t0 < a.send_seconds:
                try:
                    sent += s.send(chunk[: min(len(chunk), a.size - 1 - sent)])
                except BlockingIOError:
                    time.sleep(0.001)
        except (BrokenPipeError, ConnectionResetError):
            pass
        socks.append(s)
    time.sleep(1)
    answered = {}
    for s in socks:
        try:
            s.setblocking(True)
            s.settimeout(0.2)
            line = s.recv(200).split(b"\r\n")[0].decode()
            if line:
                answered[line] = answered.get(line, 0) + 1
        except OSError:
            pass
    print(f"connections={a.connections} rss_after_mib={rss_mib(a.pid)} answered_early={answered}")
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
