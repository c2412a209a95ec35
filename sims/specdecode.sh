#!/usr/bin/env bash
# sims/specdecode.py in chunks of at most MINUTES minutes (default 13), each with the background real-tree
# expansions (sims/realtrees.py, if any run) paused by SIGSTOP and always resumed by SIGCONT afterwards, half a minute
# apart, until every block is done. Arguments go to sims/specdecode.py; PYTHON picks the interpreter.
#
#     PYTHON=.venv/bin/python sims/specdecode.sh
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
MINUTES=${MINUTES:-13}
pids=""
resume() { if [ -n "$pids" ]; then kill -CONT $pids 2>/dev/null; pids=""; fi; }
trap resume EXIT
trap 'resume; exit 130' INT TERM
while true; do
    pids=$(pgrep -f "sims/realtrees.py" | tr '\n' ' ')
    if [ -n "$pids" ]; then kill -STOP $pids; fi
    "$PY" sims/specdecode.py --max-minutes "$MINUTES" "$@"
    rc=$?
    resume
    if [ "$rc" -ne 3 ]; then exit "$rc"; fi
    sleep 30
done
