#!/usr/bin/env python3
"""RSS of a chat-server whose history holds one large message in each of many rooms.

Usage: history-rss.py SERVER_BIN ROOMS TEXT_BYTES [EXTRA_SERVER_ARGS...]

Starts SERVER_BIN (SQLite history, one shard, loopback, port 0) in a fresh directory, logs in
one JSON client, and for each of ROOMS rooms joins it and says one TEXT_BYTES message (waiting
for every ROOM_MSG_ACK). Reads the server's VmRSS (/proc/PID/status) after login, after the
rooms, then restarts the server on the same database and reads it again once it listens and
after a client joined a room and got its history replayed. Prints one JSON object. Every wait
is bounded; only the server this script started is signalled, by its PID.
"""
import json, os, re, signal, socket, subprocess, sys, tempfile, time

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1

def start(binary, workdir, extra):
    log = open(os.path.join(workdir, "server.log"), "ab")
    args = [binary, "--bind", "127.0.0.1", "--port", "0", "--no-tls", "--shards", "1", "--history", "sqlite",
            "--data-dir", "data", "--msg-rate", "0", "--log-level", "info"] + extra
    p = subprocess.Popen(args, cwd=workdir, stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        text = open(os.path.join(workdir, "server.log"), errors="replace").read()
        found = re.findall(r"listening on 127\.0\.0\.1:(\d+)", text)
        if len(found) > start.count:
            start.count = len(found)
            return p, int(found[-1])
        time.sleep(0.05)
    p.kill()
    sys.exit("the server never listened")
start.count = 0

class Client:
    def __init__(self, port, name):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.buf = b""
        self.send({"type": "login", "username": name})
        self.until(lambda m: m["type"] == "login_ack")

    def send(self, obj):
        self.s.sendall((json.dumps(obj) + "\n").encode())

    def recv(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise EOFError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def until(self, pred):
        while True:
            m = self.recv()
            if pred(m):
                return m

def main():
    binary, rooms, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    extra = sys.argv[4:]
    workdir = tempfile.mkdtemp(prefix="history-rss-")
    p, port = start(binary, workdir, extra)
    try:
        c = Client(port, "filler")
        time.sleep(0.5)
        out = {"binary": binary, "rooms": rooms, "text_bytes": size, "extra_args": extra,
               "rss_kib_after_login": rss_kib(p.pid)}
        text = "x" * size
        t0 = time.time()
        batch = 100
        for start_room in range(0, rooms, batch):
            n = min(batch, rooms - start_room)
            for i in range(start_room, start_room + n):
                c.send({"type": "join_room", "room": f"room{i}"})
                c.send({"type": "room_msg", "text": text})
            acks = 0
            while acks < n:
                m = c.recv()
                if m["type"] == "room_msg_ack":
                    acks += 1
                elif m["type"] == "error_msg":
                    raise SystemExit(f"error: {m}")
        out["fill_seconds"] = round(time.time() - t0, 1)
        time.sleep(0.5)
        out["rss_kib_after_rooms"] = rss_kib(p.pid)
        c.s.close()
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
        p, port = start(binary, workdir, extra)
        time.sleep(0.5)
        out["rss_kib_after_restart"] = rss_kib(p.pid)
        c = Client(port, "reader")
        c.send({"type": "join_room", "room": "room7"})
        m = c.until(lambda m: m["type"] == "room_msg")
        out["replayed_after_restart"] = bool(m.get("history")) and len(m["text"]) == size
        out["rss_kib_after_replay"] = rss_kib(p.pid)
        print(json.dumps(out))
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()

main()
