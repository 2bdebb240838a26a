#!/usr/bin/env bash
# Screenshots of a real report (docs/report.md), and its latency plot for docs/results.md:
# the board exploration of mnist-5k (scripts/results_board.sh, step 4) reported for
# nucleo-l432kc within 1 point of the float N = 400 model, then three views of its
# report.html taken with headless Chromium
# (Debian: apt-get install chromium; only for these pictures, no test needs it).
# Each view is the page itself with a CSS rule that hides the other sections (and, for the
# grid, opens its folded table), in a temporary copy; the report is not changed.
# Usage: bash scripts/report_screenshots.sh [OUT_DIR]   (docs/img by default)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/img}; mkdir -p "$OUT"
E=runs/board/mnist5k
REPORT=$E/report
for f in "$E/results.jsonl" "$E/selected.tsnn" runs/results/mnist5k_ts_n400.tsnn; do
    [ -f "$f" ] || { echo "missing $f: run bash scripts/results_board.sh first" >&2; exit 2; }
done
command -v chromium >/dev/null || { echo "needs chromium: apt-get install -y chromium" >&2; exit 2; }
.venv/bin/tinysnn report "$E/results.jsonl" --board nucleo-l432kc --within 1 \
    --model runs/results/mnist5k_ts_n400.tsnn --selected "$E/selected.tsnn" --out "$REPORT" \
    --title "tinySNN exploration, mnist-5k, board nucleo-l432kc"
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT

view() {  # name window-height css [sed expression]
    local name=$1 height=$2 css=$3 extra=${4:-}
    sed -e "s|</style>|$css</style>|" ${extra:+-e "$extra"} "$REPORT/report.html" > "$TMP/$name.html"
    # --no-sandbox: Chromium refuses to run as root otherwise (CI containers)
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --window-size=1280,"$height" --screenshot="$TMP/$name.png" "file://$TMP/$name.html" \
        >/dev/null 2>&1
    # trim the white below the content; 256 colours keep text sharp and the file small
    .venv/bin/python - "$TMP/$name.png" "$OUT/report-$name.png" <<'EOF'
import sys
from PIL import Image, ImageOps
im = Image.open(sys.argv[1]).convert("RGB")
box = ImageOps.invert(im).getbbox()
im = im.crop((0, 0, im.width, min(im.height, box[3] + 24)))
im.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(sys.argv[2], optimize=True)
print(sys.argv[2], im.size)
EOF
}
# 1. provenance, the selection and the board figures (its 936-row table folded)
view overview 3000 "section:not(#provenance):not(#selection):not(#board-nucleo-l432kc){display:none}"
# 2. the grid with its diagnostics: its folded table opened, the view cut after ~40 rows
view grid 1150 "header,section:not(#grid){display:none}" "s|<details>|<details open>|g"
# 3. the plots section, less the float model's weight map and class assignments (the selected
#    model's show the same kind of figure)
view plots 6000 "header,section:not(#plots){display:none} #plots figure:nth-of-type(4),#plots figure:nth-of-type(6){display:none}"
# docs/results.md section 5 shows this report's accuracy-vs-latency plot
cp "$REPORT/latency_nucleo-l432kc.png" docs/board-latency-mnist5k.png
ls -l "$OUT"/report-*.png docs/board-latency-mnist5k.png
