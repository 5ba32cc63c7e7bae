#!/usr/bin/env bash
# Plot fsrv's data file: one PNG per operation, throughput per back end,
# clustered by network, payload and connection count.
#
#   scripts/bench-plot.sh fsrv.dat outdir
set -euo pipefail
dat=$1 out=$2
base=$(basename "$dat" .dat)	# fsrv, fsrv-release
command -v gnuplot > /dev/null || exit 1
for op in WRITE READ; do
	lower=$(echo "$op" | tr 'A-Z' 'a-z')
	python3 - "$dat" "$op" > "$out/$base-$lower.tab" <<'PY'
import sys
rows, backends = {}, []
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 6 or f[0] != sys.argv[2]:
        continue
    key = f"{f[1]}/{f[2]}/{f[3]}c"
    if f[4] not in backends:
        backends.append(f[4])
    rows.setdefault(key, {})[f[4]] = f[5]
print("case " + " ".join(backends))
for key, vals in rows.items():
    print(key + " " + " ".join(vals.get(b, "0") for b in backends))
PY
	ncol=$(head -1 "$out/$base-$lower.tab" | wc -w)
	gnuplot <<GP
set terminal png size 1400,600
set output "$out/$base-$lower.png"
set title "fsrv $op throughput, MB/s (median; net/payload/connections)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key outside right
set xtics rotate by -45
set ylabel "MB/s"
plot for [i=2:$ncol] "$out/$base-$lower.tab" using i:xtic(1) title columnheader(i)
GP
done
