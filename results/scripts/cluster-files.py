#!/usr/bin/env python3
"""Downloads of one file from the node that stores it and from another node of a cluster.

Starts nats-server -js and two chat-server nodes (n1, n2) on free loopback ports, uploads a file
of SIZE MiB through n1 (JSON lines, paced under the default message rate), then downloads it
ROUNDS times from n1 (local read) and from n2 (fetched from n1 chunk by chunk through NATS),
alternating, checking every byte against the SHA-256. Prints one JSON object.

Usage: cluster-files.py [BIN_DIR] [SIZE_MIB] [ROUNDS]   (BIN_DIR defaults to target/release)
"""
import base64, hashlib, json, os, shutil, socket, subprocess, sys, tempfile, time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release"
SIZE = int(sys.argv[2]) if len(sys.argv) > 2 else 8
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
CHUNK = 32 * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, deadline=20):
    end = time.time() + deadline
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


class Conn:
    def __init__(self, port, name):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.f = self.s.makefile("rb")
        self.send({"type": "login", "username": name})
        self.until("login_ack")

    def send(self, m):
        self.s.sendall(json.dumps(m).encode() + b"\n")

    def recv(self):
        line = self.f.readline()
        if not line:
            raise SystemExit("connection closed")
        return json.loads(line)

    def until(self, *types):
        while True:
            m = self.recv()
            if m["type"] in types:
                return m


def download(c, fid):
    c.send({"type": "file_get", "id": fid})
    h, n = hashlib.sha256(), 0
    while True:
        m = c.until("file_chunk", "file_done", "error_msg")
        if m["type"] == "file_chunk":
            d = base64.b64decode(m["data"])
            h.update(d)
            n += len(d)
        elif m["type"] == "file_done":
            return n, h.hexdigest(), m["sha256"]
        else:
            raise SystemExit(f"refused: {m}")


def main():
    tmp = tempfile.mkdtemp(prefix="cluster-files-")
    procs = []
    try:
        nport = free_port()
        procs.append(subprocess.Popen(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(nport), "-sd", f"{tmp}/js"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(nport)
        ports = {}
        for node in ["n1", "n2"]:
            ports[node] = free_port()
            os.makedirs(f"{tmp}/{node}")
            procs.append(subprocess.Popen(
                [os.path.abspath(f"{BIN}/chat-server"), "--port", str(ports[node]), "--bind", "127.0.0.1", "--no-tls",
                 "--history", "memory", "--cluster", f"nats://127.0.0.1:{nport}", "--node", node],
                cwd=f"{tmp}/{node}", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_port(ports[node])
        data = os.urandom(SIZE << 20)
        sha = hashlib.sha256(data).hexdigest()
        up = Conn(ports["n1"], "alice")
        up.send({"type": "file_offer", "name": "big.bin", "size": len(data), "sha256": sha})
        fid = up.until("file_accept")["id"]
        for i in range(0, len(data), CHUNK):
            up.send({"type": "file_chunk", "id": fid, "offset": i,
                     "data": base64.b64encode(data[i:i + CHUNK]).decode()})
            time.sleep(1 / 80)  # under the default 100 messages/s
        up.send({"type": "file_done", "id": fid, "sha256": sha})
        up.until("file_available")
        local, remote = Conn(ports["n1"], "bob"), Conn(ports["n2"], "carol")
        # Wait until n2's index has the file.
        for _ in range(200):
            remote.send({"type": "list_files"})
            if any(f["id"] == fid for f in remote.until("list_files")["files"]):
                break
            time.sleep(0.05)
        times = {"local": [], "remote": []}
        for _ in range(ROUNDS):
            for kind, c in [("local", local), ("remote", remote)]:
                t = time.perf_counter()
                n, got, told = download(c, fid)
                times[kind].append(time.perf_counter() - t)
                assert n == len(data) and got == sha == told, (kind, n, got, told)
        med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
        print(json.dumps({
            "size_mib": SIZE, "rounds": ROUNDS, "chunks": -(-len(data) // CHUNK),
            "seconds": times, "median_s": med,
            "median_mib_per_s": {k: SIZE / v for k, v in med.items()},
            "remote_over_local": med["remote"] / med["local"],
        }, indent=1))
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


main()
