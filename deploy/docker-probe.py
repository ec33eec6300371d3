#!/usr/bin/env python3
"""A JSON-lines client for deploy/docker-proof.sh, on loopback, bounded in time.

  docker-probe.py send   HOST PORT TEXT   log in, join room "proof", send TEXT, wait for its ACK
  docker-probe.py replay HOST PORT TEXT   log in, join room "proof", expect TEXT replayed as history

Exits 0 on success and 1 with a message otherwise. Retries the connection for up to 60 s while
the container starts.
"""
import json
import socket
import sys
import time

ROOM = "proof"
DEADLINE_S = 60


def connect(host, port):
    end = time.monotonic() + DEADLINE_S
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=5)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except OSError as err:
            if time.monotonic() > end:
                sys.exit(f"FAIL: no connection to {host}:{port}: {err}")
            time.sleep(0.5)


def lines(sock):
    """Yields JSON objects until the overall deadline."""
    end = time.monotonic() + DEADLINE_S
    buf = b""
    while time.monotonic() < end:
        sock.settimeout(max(0.1, end - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            sys.exit("FAIL: the server closed the connection")
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)
    sys.exit("FAIL: timed out")


def send(sock, obj):
    sock.sendall(json.dumps(obj).encode() + b"\n")


def session(host, port, user):
    """Connects (retrying while the container starts), logs in and joins ROOM."""
    end = time.monotonic() + DEADLINE_S
    while True:
        sock = connect(host, port)
        try:
            send(sock, {"type": "login", "username": user})
            msgs = lines(sock)
            for msg in msgs:
                if msg["type"] == "login_ack":
                    break
                if msg["type"] == "login_reject":
                    sys.exit(f"FAIL: login rejected: {msg}")
            send(sock, {"type": "join_room", "room": ROOM})
            return sock, msgs
        except (OSError, SystemExit) as err:
            sock.close()
            if time.monotonic() > end:
                sys.exit(f"FAIL: no session: {err}")
            time.sleep(0.5)


def main():
    mode, host, port, text = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    user = f"prover{int(time.time() * 1000) % 100000}"
    sock, msgs = session(host, port, user)
    if mode == "send":
        for msg in msgs:
            if msg["type"] == "join_room":
                send(sock, {"type": "room_msg", "text": text})
            elif msg["type"] == "room_msg_ack":
                print(f"ok: {user} sent {text!r}, acknowledged as id {msg['id']}")
                return
            elif msg["type"] == "error_msg":
                sys.exit(f"FAIL: {msg}")
    elif mode == "replay":
        for msg in msgs:
            if msg["type"] == "room_msg" and msg.get("text") == text:
                if not msg.get("history"):
                    sys.exit(f"FAIL: {text!r} came back live, not as history: {msg}")
                print(f"ok: {user} got {text!r} (id {msg['id']}) replayed as history after restart")
                return
            if msg["type"] == "room_msg" and not msg.get("history"):
                sys.exit(f"FAIL: live traffic before {text!r} was replayed")
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
