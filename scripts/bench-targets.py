#!/usr/bin/env python3
"""The benchmark issue's targets, computed from an fsrv bench table.

    scripts/bench-targets.py build/bench/fsrv.txt

Reads the markdown rows fsrv prints (| op | net | payload | conns | back
end | MB/s | sys s/GiB | syscalls/req | ...) and prints, over every
8 MiB cell (each network and connection count), the range of each ratio
the targets are stated in.
"""
import re
import sys


def load(path):
    cells, memcpy = {}, None
    for line in open(path):
        m = re.search(r"memcpy.*= ([0-9.]+) s per GiB", line)
        if m:
            memcpy = float(m.group(1))
        f = [x.strip() for x in line.strip().strip("|").split("|")]
        if len(f) < 11 or f[0] not in ("WRITE", "READ"):
            continue
        op, net, payload, conns, backend = f[:5]
        cells[(op, net, payload, conns, backend)] = {
            "mbps": float(f[5]), "sys": float(f[6]), "notes": f[10]}
    return cells, memcpy


def ratios(cells, op, num, den, field="mbps", payload="8m", by_net=None):
    out = []
    for (o, net, p, conns, b), v in sorted(cells.items()):
        if o != op or p != payload or b != num:
            continue
        d = cells.get((o, net, p, conns, den))
        if d and d[field]:
            out.append(v[field] / d[field])
            if by_net is not None:
                by_net.setdefault(net, []).append(v[field] / d[field])
    return out


def nets(by_net, fmt="{:.2f}x"):
    """The range per network: lo and veth deliver locally, nic does not."""
    return ", ".join(f"{n} {fmt.format(min(v))}-{fmt.format(max(v))}"
                     for n, v in by_net.items())


def span(vals, fmt="{:.2f}x"):
    if not vals:
        return "n/a"
    return f"{fmt.format(min(vals))}-{fmt.format(max(vals))} ({len(vals)} cells)"


def count(vals, ok):
    return f"{sum(1 for v in vals if ok(v))} of {len(vals)}"


def main():
    cells, memcpy = load(sys.argv[1])
    rows = []
    targets = (
        ("recvfile vs rw, 8 MiB: >= 2.0x throughput",
         ("WRITE", "recvfile", "rw"), {}, lambda v: v >= 2.0),
        ("recvfile vs rw, 8 MiB: <= 0.5x server CPU/GiB",
         ("WRITE", "recvfile", "rw", "sys"), {}, lambda v: v <= 0.5),
        ("recvfile vs splice pair: >= 1.15x",
         ("WRITE", "recvfile", "splice"), {}, lambda v: v >= 1.15),
        ("uring splice vs uring read+write: >= 2.0x",
         ("WRITE", "uring", "uring-rw"), {}, lambda v: v >= 2.0),
    )
    for label, args, by_net, ok in targets:
        r = ratios(cells, *args, by_net=by_net)
        rows.append((label, span(r), nets(by_net), count(r, ok)))
    for op in ("WRITE", "READ"):
        w = [int(m.group(1)) for (o, _, p, _, b), v in cells.items()
             if o == op and p == "8m" and b == "uring"
             for m in [re.search(r"workers seen: (\d+)", v["notes"])] if m]
        rows.append((f"{op} uring: io-wq workers", span(w, "{}"), "",
                     count(w, lambda v: v == 0)))
    if memcpy:
        by_net = {}
        s = []
        for (o, net, p, _, b), v in cells.items():
            if o == "WRITE" and p == "8m" and b == "recvfile":
                s.append(v["sys"] / memcpy)
                by_net.setdefault(net, []).append(v["sys"] / memcpy)
        rows.append((f"recvfile CPU/GiB vs memcpy ({memcpy:.2f} s/GiB): <= 1.5x",
                     span(s), nets(by_net), count(s, lambda v: v <= 1.5)))
    for num, den in (("sendfile-notif", "sendfile"), ("uring-notif", "uring")):
        by_net = {}
        r = ratios(cells, "READ", num, den, by_net=by_net)
        rows.append((f"{num} vs {den}: >= 0.95x", span(r), nets(by_net),
                     count(r, lambda v: v >= 0.95)))
    print("| target | measured (8 MiB cells) | by network | met in |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
