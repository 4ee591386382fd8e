#!/usr/bin/env bash
# Growth of the system check with the data: the generator's dataset at each
# size, the system check and the floor (installments and payments summed per
# loan) timed on each, and the time ratio per doubling of the loans
# ((t2/t1) ^ (1 / log2(n2/n1)): 2.00 is linear).
#   bash bench/growth.sh [loans...=10000 30000 100000]
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(10000 30000 100000)
DIR=/tmp/motofinai-bench-growth PORT=55453
source "$(dirname "$0")/dataset.sh"

results=()
for n in "${SIZES[@]}"; do
    make_dataset "growth_$n" "$n"
    results+=("$n $(time_ms "growth_$n" "$FLOOR_SQL") $(time_ms "growth_$n" "SELECT count(*) FROM check_system_consistency()")")
done
printf '%s\n' "${results[@]}" | python3 -c '
import math, sys
rows = [tuple(map(float, l.split())) for l in sys.stdin if l.strip()]
print("   loans   floor ms  system ms  system/floor  per doubling (floor, system)")
prev = None
for n, f, s in rows:
    growth = ""
    if prev:
        d = math.log2(n / prev[0])
        growth = f"{(f / prev[1]) ** (1 / d):.2f}, {(s / prev[2]) ** (1 / d):.2f}"
    print(f"{int(n):>8} {f:>10.1f} {s:>10.1f} {s / f:>13.2f}  {growth}")
    prev = (n, f, s)
'
