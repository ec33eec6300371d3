#!/usr/bin/env python3
"""Server RSS per idle connection: opens N connections of one kind, logs each in, waits until
every LOGIN_ACK arrived, and prints the server's VmRSS (from /proc) before and after.

usage: idle_rss.py PID HOST:PORT N ws|json
"""
import json, os, socket, sys, time

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS")

def masked_text(payload: bytes) -> bytes:
    key = os.urandom(4)
    n = len(payload)
    head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))

def main():
    pid, addr, n, kind = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    host, port = addr.rsplit(":", 1)
    before = rss_kib(pid)
    socks = []
    for i in range(n):
        s = socket.create_connection((host, int(port)), timeout=10)
        login = json.dumps({"type": "login", "username": f"idle{kind}{i}"}).encode()
        if kind == "ws":
            s.sendall(b"GET /ws HTTP/1.1\r\nHost: " + addr.encode() + b"\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      b"Sec-WebSocket-Version: 13\r\n\r\n" + masked_text(login))
        else:
            s.sendall(login + b"\n")
        socks.append(s)
    # Every connection must have its LOGIN_ACK (bounded wait).
    deadline = time.time() + 60
    for s in socks:
        got = b""
        while b"login_ack" not in got:
            if time.time() > deadline:
                raise SystemExit("timed out waiting for LOGIN_ACKs")
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("server closed a connection")
            got += chunk
    time.sleep(1)
    after = rss_kib(pid)
    print(json.dumps({"kind": kind, "connections": n, "rss_before_kib": before, "rss_after_kib": after,
                      "bytes_per_connection": round((after - before) * 1024 / n)}))
    for s in socks:
        s.close()

main()
