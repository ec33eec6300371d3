"""The table of an interleave.sh folder (before-after.sh, presence-storm.sh): one row per run,
then the medians side by side and their ratio. Each summary script passes its own FIELDS:
(label, getter of a loadgen report.json, printf format)."""
import glob, json, os, statistics


def summarise(d, fields):
    runs = {}
    for p in sorted(glob.glob(os.path.join(d, "*-*-*.json"))):
        scenario, which, i = os.path.basename(p)[:-5].rsplit("-", 2)
        runs.setdefault(scenario, {}).setdefault(which, []).append((int(i), json.load(open(p))))
    for scenario, by in sorted(runs.items()):
        print(f"### {scenario}\n")
        print("| run | " + " | ".join(f[0] for f in fields) + " |")
        print("|---|" + "---|" * len(fields))
        for which in ("before", "after"):
            for i, r in sorted(by.get(which, []), key=lambda x: x[0]):
                print(f"| {which} {i} | " + " | ".join(f[2] % f[1](r) for f in fields) + " |")
        med = {w: [statistics.median(f[1](r) for _, r in by[w]) for f in fields] for w in ("before", "after") if by.get(w)}
        for w in med:
            print(f"| **median {w}** | " + " | ".join(f[2] % v for f, v in zip(fields, med[w])) + " |")
        if len(med) == 2:
            ratio = [(a / b if b else float("nan")) for a, b in zip(med["after"], med["before"])]
            print("| **after / before** | " + " | ".join("%.2f" % x for x in ratio) + " |")
        print()
