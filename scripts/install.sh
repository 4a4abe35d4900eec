#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: system packages, a venv, the CPU build of torch
# first (a bare `torch` requirement would pull a multi-GB CUDA build), then the project.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need_apt+=(fonts-noto-color-emoji)
command -v exiftool >/dev/null 2>&1 || need_apt+=(libimage-exiftool-perl)
# ffprobe: the tests read MP4 labels back with it (the product encodes with PyAV, not this)
command -v ffprobe >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)  # the spoken-digits data set (`aigc data digits`)
# the playground's browser test (tests/e2e/test_playground_browser.py) drives Debian's chromium
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install: apt-get install ${need_apt[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "install: please install the Debian packages: ${need_apt[*]}" >&2
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  echo "install: torch (CPU build)" >&2
  # Set TORCH_SPEC (e.g. "torch==2.13.0+cpu" with PIP_EXTRA_INDEX_URL) where the plain pin would
  # pull a CUDA build you do not want.
  .venv/bin/python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
fi
echo "install: project and test dependencies" >&2
log=$(mktemp)
if ! .venv/bin/python -m pip install -q -e ".[test]" >"$log" 2>&1; then
  cat "$log" >&2
  echo "install: pip failed" >&2
  exit 1
fi
rm -f "$log"
.venv/bin/python -c "import aigc.cli, engine.service, bot, torch" >/dev/null
