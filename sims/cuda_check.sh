#!/usr/bin/env bash
# The CUDA checks of brw on a GPU machine, in a few minutes: the tests marked `cuda` (tests/test_cuda.py and
# test_recording's CUDA test) record a trace and expand real optimal trees on the GPU with a small random-weight
# Llama and compare them with the CPU (same tokens; numbers to float32's accuracy, measured on the CPU).
#
#   sims/cuda_check.sh                 # from the repository root; PYTHON=... picks the interpreter
#
# It makes a virtual environment in .venv-cuda that sees the machine's own packages (a CUDA build of torch, if
# one is installed there), installs brw with its test extra and what the model extra needs beside torch, and
# installs torch 2.13.0 from PyPI (a CUDA build on Linux) only when no torch with CUDA is importable. Without a
# CUDA device the tests are skipped, and this script says so and fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv-cuda}
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv --system-site-packages "$VENV"
fi
PY="$VENV/bin/python"
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    "$PY" -m pip install -q "torch==2.13.0"
fi
"$PY" -m pip install -q -e '.[test]' "transformers>=4.46" tokenizers accelerate safetensors
"$PY" - <<'EOF'
import sys

import torch

if not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} sees no CUDA device here: the cuda tests would only be skipped")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
EOF
exec timeout 600 "$PY" -m pytest -q -m cuda -rs -p no:cacheprovider tests/test_cuda.py tests/test_recording.py
