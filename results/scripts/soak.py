#!/usr/bin/env python3
"""Soak: mixed load against one chat-server for a long time, with its RSS sampled every 10 s.

Mixed load, all JSON lines over plain TCP on loopback, bounded in time and rate:
  - chat: every client sends room messages at --rate per second (PMs now and then);
  - joins and leaves: a share of actions joins a random room of --rooms (10,000 by default), so
    rooms fill, empty and get history across the whole name space;
  - file uploads: a share of actions uploads a small random file (1-16 KiB) to the current room;
  - lists: LIST_ROOMS / LIST_USERS / LIST_FILES now and then;
  - reconnect storms: every --storm-every seconds, half the clients drop their connection at
    once and reconnect at once (a new login, the same name).
Every --sample seconds it writes the server's VmRSS (from /proc/PID/status) and the counts so
far to rss.csv; at the end, summary.json and rss.svg (RSS over time, no plotting library needed).

  results/scripts/soak.py --addr 127.0.0.1:5555 --server-pid PID --duration 1800 --out DIR
"""
import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import time


class Counts:
    def __init__(self):
        self.sent = self.acks = self.delivered = self.pms = 0
        self.joins = self.uploads = self.uploads_done = self.lists = 0
        self.errors = self.reconnects = self.disconnects = self.rejects = 0
        self.error_codes = {}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Client:
    def __init__(self, args, n, counts):
        self.args, self.name, self.c = args, f"soak{n}", counts
        self.writer = None
        self.upload = None  # (data, sha) waiting for file_accept

    async def send(self, obj):
        self.writer.write(json.dumps(obj).encode() + b"\n")
        await self.writer.drain()

    async def reader(self, reader):
        while True:
            line = await reader.readline()
            if not line:
                return
            msg = json.loads(line)
            t = msg.get("type")
            if t == "room_msg":
                self.c.delivered += 1
            elif t == "room_msg_ack":
                self.c.acks += 1
            elif t == "error_msg":
                self.c.errors += 1
                code = str(msg.get("code"))
                self.c.error_codes[code] = self.c.error_codes.get(code, 0) + 1
                self.upload = None
            elif t == "file_accept" and self.upload:
                data, sha = self.upload
                self.upload = None
                b64 = base64.b64encode(data).decode()
                await self.send({"type": "file_chunk", "id": msg["id"], "offset": 0, "data": b64})
                await self.send({"type": "file_done", "id": msg["id"], "sha256": sha})
            elif t == "file_available" and msg.get("from") == self.name:
                self.c.uploads_done += 1
            elif t == "login_reject":
                # The old session of this name is not gone yet (a storm): try again shortly.
                self.c.rejects += 1
                return

    async def act(self):
        r = random.random()
        a = self.args
        if r < a.join_share:
            self.c.joins += 1
            await self.send({"type": "join_room", "room": f"r{random.randrange(a.rooms)}"})
        elif r < a.join_share + a.upload_share:
            data = os.urandom(random.randint(1024, 16384))
            sha = hashlib.sha256(data).hexdigest()
            self.upload = (data, sha)
            self.c.uploads += 1
            name = f"f{random.randrange(10**6)}.bin"
            await self.send({"type": "file_offer", "name": name, "size": len(data), "sha256": sha})
        elif r < a.join_share + a.upload_share + 0.01:
            self.c.lists += 1
            kind = random.choice(["list_rooms", "list_users", "list_files"])
            await self.send({"type": kind})
        elif r < a.join_share + a.upload_share + 0.06:
            self.c.pms += 1
            to = f"soak{random.randrange(a.clients)}"
            await self.send({"type": "private_msg", "to": to, "text": "psst " + "x" * 40})
        else:
            self.c.sent += 1
            text = f"{self.name} {time.time():.3f} " + "m" * random.randint(16, 200)
            await self.send({"type": "room_msg", "text": text})

    async def session(self, stop, storm):
        """One connection: log in, act at the rate until the end or a storm takes it."""
        host, port = self.args.addr.rsplit(":", 1)
        reader, self.writer = await asyncio.open_connection(host, int(port))
        await self.send({"type": "login", "username": self.name})
        read = asyncio.ensure_future(self.reader(reader))
        period = 1.0 / self.args.rate
        try:
            while not stop.is_set() and not read.done():
                if storm.is_set() and random.random() < 0.5:
                    self.c.disconnects += 1
                    return
                await self.act()
                await asyncio.sleep(random.uniform(0.5, 1.5) * period)
        finally:
            read.cancel()
            self.writer.close()

    async def run(self, stop, storm):
        while not stop.is_set():
            try:
                await self.session(stop, storm)
            except (OSError, ValueError, asyncio.IncompleteReadError):
                self.c.errors += 1
                await asyncio.sleep(0.5)
            if stop.is_set():
                return
            # Reconnect when the storm's flag drops: all at once (after a rejected login, soon).
            await asyncio.sleep(0.2)
            while storm.is_set() and not stop.is_set():
                await asyncio.sleep(0.05)
            self.c.reconnects += 1


def svg(samples, path):
    """RSS (MiB) over time (min) as a small SVG line chart."""
    w, h, pad = 720, 320, 48
    tmax = max(s[0] for s in samples) or 1
    rmax = max(s[1] for s in samples) / 1024 or 1
    pts = " ".join(
        f"{pad + (t / tmax) * (w - 2 * pad):.1f},{h - pad - (r / 1024 / rmax) * (h - 2 * pad):.1f}"
        for t, r, *_ in samples
    )
    ticks = "".join(
        f'<text x="{pad - 6}" y="{h - pad - f * (h - 2 * pad) + 4:.0f}" text-anchor="end">'
        f"{rmax * f:.0f}</text>"
        for f in (0, 0.25, 0.5, 0.75, 1)
    )
    with open(path, "w") as f:
        f.write(
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
            f'font-family="sans-serif" font-size="11">'
            f'<rect width="{w}" height="{h}" fill="white"/>'
            f'<polyline points="{pts}" fill="none" stroke="#1f6feb" stroke-width="2"/>'
            f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>'
            f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="black"/>{ticks}'
            f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle">minutes (0 to {tmax / 60:.0f})</text>'
            f'<text x="14" y="{h / 2}" transform="rotate(-90 14 {h / 2})" text-anchor="middle">'
            f"server RSS (MiB)</text></svg>"
        )


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--addr", default="127.0.0.1:5555")
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--duration", type=float, default=1800)
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--rooms", type=int, default=10000)
    p.add_argument("--rate", type=float, default=4.0, help="actions per second per client")
    p.add_argument("--join-share", type=float, default=0.2)
    p.add_argument("--upload-share", type=float, default=0.003)
    p.add_argument("--storm-every", type=float, default=60)
    p.add_argument("--sample", type=float, default=10)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    counts, stop, storm = Counts(), asyncio.Event(), asyncio.Event()
    clients = [Client(args, n, counts) for n in range(args.clients)]
    tasks = [asyncio.ensure_future(c.run(stop, storm)) for c in clients]
    start = time.monotonic()
    samples, next_storm = [], args.storm_every
    with open(os.path.join(args.out, "rss.csv"), "w") as csv:
        csv.write("seconds,rss_kib,sent,acks,delivered,joins,uploads,uploads_done,errors,reconnects\n")
        while (t := time.monotonic() - start) < args.duration:
            c = counts
            row = (round(t), rss_kib(args.server_pid), c.sent, c.acks, c.delivered, c.joins,
                   c.uploads, c.uploads_done, c.errors, c.reconnects)
            samples.append(row)
            csv.write(",".join(map(str, row)) + "\n")
            csv.flush()
            print(f"t={row[0]:5d}s rss={row[1] / 1024:7.1f} MiB sent={c.sent} acks={c.acks} "
                  f"delivered={c.delivered} joins={c.joins} uploads={c.uploads_done}/{c.uploads} "
                  f"errors={c.errors} reconnects={c.reconnects}", flush=True)
            if t >= next_storm:
                storm.set()
                await asyncio.sleep(1)
                storm.clear()
                next_storm += args.storm_every
            await asyncio.sleep(max(0, args.sample - (time.monotonic() - start - t)))
    stop.set()
    await asyncio.wait(tasks, timeout=10)
    svg(samples, os.path.join(args.out, "rss.svg"))
    third = max(1, len(samples) // 3)
    mid = max(s[1] for s in samples[third:2 * third] or samples)
    last = max(s[1] for s in samples[2 * third:] or samples)
    summary = dict(vars(counts), duration_s=args.duration, clients=args.clients, rooms=args.rooms,
                   rss_first_kib=samples[0][1], rss_max_middle_third_kib=mid,
                   rss_max_last_third_kib=last, growth_last_vs_middle=round(last / mid - 1, 4))
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
