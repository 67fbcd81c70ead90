#!/usr/bin/env python3
"""Hold a server's connections with slow clients and time how long a fresh request waits.

Opens CONNECTIONS connections to 127.0.0.1:PORT that send a request slowly: with --mode
headers, a request line and then one header byte every --every seconds (never finishing the
headers); with --mode body, complete headers announcing a 1 MB body to PATH and then one body
byte every --every seconds. A connection the server closes is opened again at once, so the
pressure stays. Meanwhile a probe sends `GET /health` on a fresh connection every --probe-every
seconds and times its answer (giving up after --give-up seconds), from --probe-from (another
loopback address, say 127.0.0.2, to stand for another client). Prints each probe's wait,
the median, and how often the server cut a slow client off, then closes everything.

    python3 scripts/slowloris.py --port 9797 --connections 150 --seconds 180

Used for the "slow clients" figures in BENCHMARKS.md. Standard library only.
"""

import argparse
import socket
import statistics
import threading
import time


def slow_client(a, stop, cut):
    while not stop.is_set():
        try:
            s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
        except OSError:
            time.sleep(0.1)
            continue
        try:
            if a.mode == "headers":
                s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            else:
                s.sendall(
                    f"POST {a.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n".encode()
                )
            s.settimeout(a.every)
            while not stop.is_set():
                try:
                    if not s.recv(4096):
                        break  # closed by the server
                    # An answer (408) before the body ended: the server gave up on us.
                    break
                except socket.timeout:
                    s.sendall(b"X" if a.mode == "headers" else b" ")
        except OSError:
            pass
        finally:
            s.close()
        if not stop.is_set():
            cut[0] += 1


def probe(a):
    t0 = time.time()
    try:
        src = (a.probe_from, 0) if a.probe_from else None
        s = socket.create_connection(("127.0.0.1", a.port), timeout=a.give_up, source_address=src)
        s.settimeout(max(0.1, a.give_up - (time.time() - t0)))
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        got = s.recv(64)
        s.close()
        if got.startswith(b"HTTP/1.1 200"):
            return time.time() - t0
    except OSError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=9797)
    ap.add_argument("--mode", choices=["headers", "body"], default="headers")
    ap.add_argument("--path", default="/auspex/v1/alertmanager", help="--mode body's route")
    ap.add_argument("--connections", type=int, default=150)
    ap.add_argument("--every", type=float, default=5.0, help="seconds between slow bytes")
    ap.add_argument("--seconds", type=float, default=180.0, help="how long to keep it up")
    ap.add_argument("--probe-every", type=float, default=10.0)
    ap.add_argument("--give-up", type=float, default=150.0, help="a probe's longest wait")
    ap.add_argument("--probe-from", default="", help="the probe's source address, e.g. 127.0.0.2")
    a = ap.parse_args()
    if a.connections < 1 or a.every <= 0 or a.seconds <= 0:
        raise SystemExit("error: --connections, --every and --seconds must be positive")
    stop, cut = threading.Event(), [0]
    threads = [
        threading.Thread(target=slow_client, args=(a, stop, cut), daemon=True)
        for _ in range(a.connections)
    ]
    for t in threads:
        t.start()
    time.sleep(2)  # let them take their places
    waits, t_end = [], time.time() + a.seconds
    while time.time() < t_end:
        t0 = time.time()
        w = probe(a)
        waits.append(w)
        print(f"probe {len(waits)}: " + (f"{w:.2f} s" if w is not None else "no answer"), flush=True)
        time.sleep(max(0.0, a.probe_every - (time.time() - t0)))
    stop.set()
    answered = [w for w in waits if w is not None]
    med = f"{statistics.median(answered):.2f}" if answered else "none"
    print(f"probes={len(waits)} answered={len(answered)} median_wait_s={med} "
          f"max_wait_s={max(answered):.2f}" if answered else
          f"probes={len(waits)} answered=0 median_wait_s=none")
    print(f"slow_clients_cut_off={cut[0]}")


if __name__ == "__main__":
    main()
