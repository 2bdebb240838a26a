#!/usr/bin/env bash
# Exploration processes, end to end (docs/results.md, "Exploration processes"):
#   1. explore --workers 2, its parent killed (SIGKILL, SIGTERM): its children alive 2 s later;
#   2. two explore runs started together on one results file: exit codes, rows, distinct keys;
#   3. explore on a Dask scheduler without workers, --no-workers-timeout 10: exit code, wall time.
# UNDO=1 repeats 1 and 2 with the change undone in every process (a sitecustomize that makes
# explore.die_with_parent and explore.results_lock no-ops), for the figures before it.
# Usage: scripts/explore_hygiene.sh [WORK_DIR]     (default runs/hygiene)
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
TS=$ROOT/.venv/bin/tinysnn
WORK=${1:-runs/hygiene}
mkdir -p "$WORK" && cd "$WORK" || exit 1
if [ "${UNDO:-0}" = 1 ]; then
    mkdir -p undo
    cat > undo/sitecustomize.py <<'EOF'
import contextlib
try:
    import tinysnn_core.explore as e
except ImportError:
    pass
else:
    e.die_with_parent = lambda parent_pid: None
    e.results_lock = lambda path: contextlib.nullcontext()
EOF
    export PYTHONPATH=$PWD/undo
fi
[ -f tiny.tsnn ] || "$TS" run -q -n 20 --n-train 80 --n-test 40 --time-steps 60 --out tiny.tsnn >/dev/null

is_alive() { [ -d "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

for sig in KILL TERM; do
    rm -f r1.jsonl
    "$TS" explore tiny.tsnn --results r1.jsonl --workers 2 --schemes itq --bits 8,6,4,3 \
        --roundings nearest --group-sets weights --no-sensitivity -q 2>/dev/null &
    parent=$!
    kids=""
    for _ in $(seq 1 150); do            # the two workers and the resource tracker
        kids=$(ps -o pid= --ppid "$parent" | tr '\n' ' ')
        [ "$(echo $kids | wc -w)" -ge 3 ] && break
        sleep 0.2
    done
    sleep 1
    kill -$sig "$parent"; wait "$parent" 2>/dev/null
    sleep 2
    alive=0
    for k in $kids; do is_alive "$k" && alive=$((alive + 1)); done
    echo "1. kill -$sig of the parent: $(echo $kids | wc -w) children before, $alive alive 2 s after"
    for k in $kids; do is_alive "$k" && kill -9 "$k"; done    # the processes started here
done

rm -f r2.jsonl
args="tiny.tsnn --results r2.jsonl --schemes ptq --bits 8,6,4 --roundings nearest --group-sets weights --no-sensitivity -q"
"$TS" explore $args >/dev/null 2>a.err & a=$!
"$TS" explore $args >/dev/null 2>b.err & b=$!
wait $a; ra=$?; wait $b; rb=$?
keys=$("$ROOT/.venv/bin/python" -c "import json; print(len({json.loads(l)['key'] for l in open('r2.jsonl')}))")
echo "2. two writers: exit codes $ra $rb, $(wc -l < r2.jsonl) rows, $keys distinct keys"
grep -h "tinysnn: error" a.err b.err | sed 's/^/   /'

[ "${UNDO:-0}" = 1 ] && exit 0
"$ROOT/.venv/bin/dask" scheduler --port 8799 --no-dashboard >scheduler.log 2>&1 &
scheduler=$!
sleep 5
rm -f r3.jsonl
start=$(date +%s.%N)
"$TS" explore tiny.tsnn --results r3.jsonl --scheduler tcp://127.0.0.1:8799 \
    --no-workers-timeout 10 --schemes ptq --bits 8 --roundings nearest --group-sets weights \
    --no-sensitivity -q 2>c.err
rc=$?
end=$(date +%s.%N)
kill "$scheduler"; wait "$scheduler" 2>/dev/null
echo "3. no workers: exit code $rc after $(printf %.1f "$(echo "$end - $start" | bc)") s"
sed 's/^/   /' c.err
