#!/usr/bin/env bash
# Take the README's screenshots of the real application under Xvfb, typing with xdotool:
#   docs/screenshot-suggestion.png   a grey suggestion after the cursor, with the sampling panel
#   docs/screenshot-sampling.png     the sampling panel alone
#   docs/screenshot-recovery.png     the recovery prompt after the app was killed while typing
# usage: docs/make_screenshots.sh [MODELS_DIR]   (needs xvfb-run, xdotool; the model is the first
# installed text model, or the first one in MODELS_DIR; SUGGESTION_TEXT is what is typed for the first)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != "--inner" ]; then
  exec xvfb-run -a -s "-screen 0 1400x900x24" "$0" --inner "${1:-}"
fi
models=${2:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
app() {  # run in a subshell, ( app ... ), so that $! is the application's own process
  exec python3 -c "import sys; from aigc_studio.app import main; sys.exit(main(sys.argv[1:]))" \
    --settings "$work/settings.ini" --data-dir "$work/data" ${models:+--models "$models"} "$@"
}
type_into_window() {  # wait for the window, then type $1 at a writer's pace
  local id
  id=$(xdotool search --sync --name "AIGC Studio" | head -1)
  xdotool windowfocus --sync "$id" 2>/dev/null || true
  xdotool type --delay 110 "$1"
}

cat > "$work/pride.md" <<'TEXT'
It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.

However little known the feelings or views of such a man may be on his first entering a neighbourhood, this truth is so well fixed in the minds of the surrounding families, that he is considered the rightful property of some one or other of their daughters.

TEXT

echo "== a suggestion"
(app "$work/pride.md" --screenshot docs/screenshot-suggestion.png --screenshot-after 14) &
sleep 4
type_into_window "${SUGGESTION_TEXT:-She walked to the window and}"
wait

echo "== the sampling panel"
cat >> "$work/settings.ini" <<'INI'
[sampling]
strategy=top-p
temperature=0.8
top_p=0.9
repetition_penalty=1.1
seed=2026
[panel]
advanced=true
INI
(app --screenshot docs/screenshot-sampling.png --screenshot-after 5 --screenshot-widget samplingDock)

echo "== the recovery prompt"
(app "$work/letter.txt") &
pid=$!
sleep 4
type_into_window "Dear Jane, I write in haste: the carriage is at the door and"
sleep 2   # recovery keeps at most about a second of typing unsaved
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
(app --screenshot docs/screenshot-recovery.png --screenshot-after 4)
echo "done: docs/screenshot-*.png"
