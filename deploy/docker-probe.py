#!/usr/bin/env python3
"""A JSON-lines client for deploy/docker-proof.sh and deploy/docker-cluster-proof.sh, on
loopback, bounded in time.

One server (docker-proof.sh):
  docker-probe.py send   HOST PORT TEXT   log in, join room "proof", send TEXT, wait for its ACK
  docker-probe.py replay HOST PORT TEXT   log in, join room "proof", expect TEXT replayed as history

The compose cluster profile (docker-cluster-proof.sh), node a on port A and node b on port B:
  docker-probe.py ready HOST METRICS_PORT  wait until the node's metrics say it is connected to NATS
  docker-probe.py cross HOST A B USER_A USER_B
        USER_A on node a and USER_B on node b join room "proof"; a room message crosses each way,
        USER_A's name is refused on node b, a private message crosses each way
  docker-probe.py hold  HOST PORT USER    log in, print "held", stay until the server closes
  docker-probe.py claim HOST PORT USER SECS
        log in as USER, retrying while the name is taken (USERNAME_TAKEN); it must be refused at
        first and granted within SECS; prints how long it took

Exits 0 on success and 1 with a message otherwise. Retries the connection for up to 60 s while
the container starts.
"""
import json
import socket
import sys
import time
import urllib.request

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


USERNAME_TAKEN = 12
STEP_S = 15  # the most one expected message of the cluster modes may take


class Conn:
    """One JSON-lines session for the cluster modes: expect() reads until a matching message."""

    def __init__(self, host, port, label):
        self.sock = connect(host, port)
        self.label = label
        self.buf = b""

    def send(self, obj):
        send(self.sock, obj)

    def next(self, end):
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError as err:  # reset: a node that is starting or has died
                return {"type": "closed", "error": str(err)}
            if not chunk:
                return {"type": "closed"}
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line) if line.strip() else self.next(end)

    def expect(self, what, pred, timeout=STEP_S):
        """Returns the first message that satisfies pred; fails on a timeout, a close or an error."""
        end = time.monotonic() + timeout
        while True:
            msg = self.next(end)
            if msg is None:
                sys.exit(f"FAIL: {self.label}: no {what} within {timeout} s")
            if pred(msg):
                return msg
            if msg["type"] in ("closed", "error_msg", "login_reject"):
                sys.exit(f"FAIL: {self.label}: {msg} while waiting for {what}")

    def login(self, user):
        """Logs in; returns the login_ack, the login_reject, or {"type": "closed"} as it is."""
        try:
            self.send({"type": "login", "username": user})
        except OSError as err:
            return {"type": "closed", "error": str(err)}
        return self.expect("login answer", lambda m: m["type"] in ("login_ack", "login_reject", "closed"))

    def close(self):
        self.sock.close()


def is_join(user, room):
    """A join notice: SYSTEM_MSG join, or a coalesced PRESENCE naming the user."""
    return lambda m: m.get("room") == room and (
        (m["type"] == "system_msg" and m.get("kind") == "join" and m.get("user") == user)
        or (m["type"] == "presence" and user in m.get("joined", []))
    )


def member(host, port, user, label):
    """A logged-in session of `user`, retrying the connection while the node starts."""
    end = time.monotonic() + DEADLINE_S
    while True:
        conn = Conn(host, port, label)
        ack = conn.login(user)
        if ack["type"] == "login_ack":
            return conn
        conn.close()
        if time.monotonic() > end:
            sys.exit(f"FAIL: {label}: no session: {ack}")
        time.sleep(0.5)


def ready(host, port):
    """Waits until the node's /metrics report `chatproto_cluster_connected 1`."""
    end = time.monotonic() + DEADLINE_S
    last = "no answer"
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as resp:
                body = resp.read().decode()
            if "\nchatproto_cluster_connected 1" in body:
                print(f"ok: the node with metrics on {host}:{port} is connected to NATS")
                return
            last = "chatproto_cluster_connected is not 1"
        except OSError as err:
            last = str(err)
        time.sleep(0.5)
    sys.exit(f"FAIL: metrics on {host}:{port}: {last}")


def cross(host, port_a, port_b, user_a, user_b):
    """Room and private messages both ways between nodes; a held name refused on the other node."""
    room = ROOM
    a = member(host, port_a, user_a, f"{user_a}@a")
    a.send({"type": "join_room", "room": room})
    a.expect("join of " + room, lambda m: m["type"] == "join_room" and m["room"] == room)
    b = member(host, port_b, user_b, f"{user_b}@b")
    b.send({"type": "join_room", "room": room})
    b.expect("join of " + room, lambda m: m["type"] == "join_room" and m["room"] == room)
    # Node b subscribed to the room before it published the join notice (one connection, in
    # order), so once a has the notice, what a sends reaches b.
    a.expect(f"{user_b}'s join notice from node b", is_join(user_b, room))
    print(f"ok: {user_a} on node a saw {user_b} (node b) join {room!r}")
    stamp = f"{int(time.time() * 1000)}"
    for src, dst, text in ((a, b, f"a to b {stamp}"), (b, a, f"b to a {stamp}")):
        src.send({"type": "room_msg", "text": text})
        ack = src.expect("room_msg_ack", lambda m: m["type"] == "room_msg_ack")
        got = dst.expect(repr(text), lambda m: m["type"] == "room_msg" and m.get("text") == text)
        print(f"ok: {src.label} -> {dst.label}: {text!r} (ack id {ack['id']}, delivered id {got['id']})")
    third = Conn(host, port_b, f"{user_a}@b")
    answer = third.login(user_a)
    third.close()
    if answer["type"] != "login_reject" or answer.get("code") != USERNAME_TAKEN:
        sys.exit(f"FAIL: {user_a} held on node a, but node b answered {answer}")
    print(f"ok: {user_a} refused on node b while held on node a: {answer['reason']!r}")
    for src, dst, to, text in ((a, b, user_b, f"pm a to b {stamp}"), (b, a, user_a, f"pm b to a {stamp}")):
        src.send({"type": "private_msg", "to": to, "text": text})
        got = dst.expect(
            repr(text), lambda m: m["type"] == "private_msg_delivery" and m.get("text") == text
        )
        print(f"ok: private {src.label} -> {dst.label}: {got['text']!r} from {got['from']!r}")
    a.close()
    b.close()


def hold(host, port, user):
    """Holds `user` until the server closes the connection, at most 10 min. (A killed container's
    connections may never close through Docker's userland proxy: the proof script ends this
    process itself after the kill.)"""
    conn = member(host, port, user, f"{user}@{port}")
    print(f"held: {user} on {host}:{port}", flush=True)
    end = time.monotonic() + 600
    while True:
        msg = conn.next(end)
        if msg is None:
            sys.exit(f"FAIL: {user} still held after 10 min")
        if msg["type"] == "closed":
            print(f"ok: {user}'s connection to {host}:{port} ended")
            return


def claim(host, port, user, within_s):
    """Logs in as `user` once the name is free; it must be refused first, then granted in time."""
    start = time.monotonic()
    refused = 0
    while True:
        conn = Conn(host, port, f"{user}@{port}")
        answer = conn.login(user)
        elapsed = time.monotonic() - start
        if answer["type"] == "login_ack":
            conn.close()
            break
        conn.close()
        if answer["type"] == "closed" or answer.get("code") != USERNAME_TAKEN:
            print(f"note: {elapsed:.1f} s: {answer}")
        refused += 1
        if elapsed > within_s:
            sys.exit(f"FAIL: {user} still refused after {elapsed:.1f} s: {answer}")
        time.sleep(0.25)
    if refused == 0:
        sys.exit(f"FAIL: {user} was granted at once: the name was not held when this began")
    print(f"ok: {user} refused {refused} times, then granted after {elapsed:.1f} s (bound {within_s} s)")


def main():
    mode = sys.argv[1]
    if mode == "ready":
        return ready(sys.argv[2], int(sys.argv[3]))
    if mode == "cross":
        return cross(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6])
    if mode == "hold":
        return hold(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    if mode == "claim":
        return claim(sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5]))
    host, port, text = sys.argv[2], int(sys.argv[3]), sys.argv[4]
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
