"""The README of a cluster.sh folder: how it was made (commands, git revision, machine) and the
tables (1/2/3 nodes, cross-node latency, node kill), from each run's loadgen report.json and
cpu.tsv. Usage: cluster_summary.py OUT_DIR SERVER LOADGEN"""
import json, os, platform, subprocess, sys

out, server, loadgen = sys.argv[1:4]
here = os.path.dirname(os.path.abspath(__file__))


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def report(tag):
    p = os.path.join(out, tag + ".json")
    return json.load(open(p)) if os.path.exists(p) else None


cpu = {}
for line in open(os.path.join(out, "cpu.tsv")):
    f = line.rstrip("\n").split("\t")
    cpu[f[0]] = {"wall": float(f[1]), "nats": f[2], "nodes": f[3:]}

model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "0")
rev = sh("git", "-C", here, "rev-parse", "--short", "HEAD")
dirty = " (with uncommitted changes)" if sh("git", "-C", here, "status", "--porcelain", "--untracked-files=no") else ""
env = {k: os.environ.get(k) for k in ("BOTS", "ROOMS", "RATE", "DURATION", "WARMUP", "PUBLISHERS", "TTL", "KILL_AFTER", "HISTORY_LEN")}

print("# Cluster: 1, 2 and 3 nodes through NATS, cross-node latency, a node killed under load (issue 13)\n")
print(f"- **git revision:** `{rev}`{dirty}")
print(f"- **machine:** {sh('nproc')} CPUs `{model}`, {int(mem) // 1024} MiB RAM, Linux {platform.release()}; "
      "every node, nats-server and loadgen on these same CPUs over loopback")
print(f"- **binaries:** server `{server}`, loadgen `{loadgen}`, `{sh(os.environ.get('NATS', 'nats-server'), '--version') or 'nats-server'}`")
print(f"- **knobs (environment; empty = the script's default):** {env}")
print("- **nodes:** `chat-server --bind 127.0.0.1 --port 0 --no-tls --history memory --msg-rate 0 "
      "--history-len N --cluster nats://127.0.0.1:P --node a|b|c --cluster-name-ttl TTL`; `nats-server -js -a 127.0.0.1 -p P -sd DIR`\n")
print("## Commands\n\n```sh\nresults/scripts/cluster.sh " + " ".join(sys.argv[1:4]) + "\n```\n")
print("Each loadgen run (from `commands.txt`):\n\n```text")
print(open(os.path.join(out, "commands.txt")).read().rstrip())
print("```\n")
print("CPU columns: user + system seconds from `/proc/PID/stat` before and after the loadgen run "
      "(connect, warm-up, measured window, drain), divided by its wall time = cores busy on average.\n")


def cores(tag, v):
    try:
        return "%.2f" % (float(v) / cpu[tag]["wall"])
    except (KeyError, ValueError, ZeroDivisionError):
        return v


def row(tag, label):
    r = report(tag)
    if r is None:
        return
    m, lat, d = r["messages"], r["latency"]["corrected"], r["deliveries"]["measured"]
    c = cpu.get(tag, {"nats": "nan", "nodes": []})
    nodes = " / ".join(cores(tag, v) for v in c["nodes"])
    print(f"| {label} | {r['bots']['ready']} | {m['sent_per_s']:.0f} | {m['delivered_per_s']:.0f} | "
          f"{lat['p50_us'] / 1000:.3f} | {lat['p99_us'] / 1000:.3f} | {lat['p99_9_us'] / 1000:.3f} | {nodes} | "
          f"{cores(tag, c['nats'])} | {d['lost']} | {d['duplicated']} |")


head = "| run | bots | sent/s | delivered/s | p50 ms | p99 ms | p99.9 ms | node CPU (cores, a / b / c) | NATS CPU (cores) | lost | dup |\n|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"
print("## 1, 2 and 3 nodes, same load spread over all nodes\n")
print(head)
for tag, label in [("standalone", "1 node, no cluster"), ("nodes1", "1 node + NATS"), ("nodes2", "2 nodes"), ("nodes3", "3 nodes")]:
    row(tag, label)
print("\n## Cross-node latency: publishers on node a, listeners on node b, against all on node a\n")
print(head)
row("cross", "cross-node (split)")
row("same", "same node")
k = report("kill")
if k is not None:
    f, m, w = k["failover"], k["deliveries"]["measured"], k["deliveries"]["warmup"]
    print("\n## Node b SIGKILLed under load, `--failover`\n")
    print("| dropped | back | gave up | back max s | back p50 s | name retries | replayed | replay gaps | lost (acked) | lost of unacked sends | duplicated | unacked sends |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {f['dropped']} | {f['back']} | {f['gave_up']} | {f['back_max_s']:.2f} | {f['back_p50_s']:.2f} | "
          f"{f['name_retries']} | {f['replayed']} | {f['replay_gaps']} | {m['lost'] + w['lost']} | "
          f"{m.get('lost_unacked', 0) + w.get('lost_unacked', 0)} | {m['duplicated'] + w['duplicated']} | {f['unacked']} |")
print("\n## Errors and warnings loadgen reported\n")
for tag in ("standalone", "nodes1", "nodes2", "nodes3", "cross", "same", "kill"):
    r = report(tag)
    if r is not None:
        print(f"- **{tag}**: errors {r['errors'] or 'none'}; warnings {r['warnings'] or 'none'}")
