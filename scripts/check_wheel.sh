#!/usr/bin/env bash
# The wheel works outside the checkout: build it from a clean copy of the sources, install it into a fresh
# venv in a temp dir (with its declared dependencies only, from PyPI or pip's cache), check it holds just the
# dialc and dialc_runtime packages with the grammar and the parser, then, from a temp dir, run
# `dialc validate` and `dialc run --dry-run` on a copy of specs/realestate.dial with its include and data.
# Any failure stops the script with a non-zero status and says which step failed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"  # its pip and setuptools build the wheel, its base python the venv
WORK="$(mktemp -d "${TMPDIR:-/tmp}/dialc-wheel.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
STEP="start"
trap 'echo "check_wheel: FAILED at: $STEP" >&2' ERR
step() { STEP="$1"; echo "check_wheel: $1"; }

step "copy the sources (no venv, caches, runs or build outputs)"
mkdir -p "$WORK/src"
tar -C "$ROOT" --exclude=./.venv --exclude=./.git --exclude=runs --exclude=./build --exclude=./dist \
  --exclude='*.egg-info' --exclude='__pycache__' --exclude='.*_cache' --exclude=./.hypothesis -cf - . \
  | tar -C "$WORK/src" -xf -

step "build the wheel"
"$PYTHON" -m pip wheel --quiet --no-deps --no-build-isolation "$WORK/src" -w "$WORK/dist"
WHEEL="$(ls "$WORK"/dist/dialc-*.whl)"

step "inspect $(basename "$WHEEL")"
"$PYTHON" - "$WHEEL" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
top = sorted({n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")})
assert top == ["dialc", "dialc_runtime"], f"unexpected top-level entries in the wheel: {top}"
for needed in ("dialc/grammar/dial.lark", "dialc/grammar/_dial_parser.py", "dialc/cli/__init__.py"):
    assert needed in names, f"{needed} is missing from the wheel"
assert any(n.startswith("dialc_runtime/evaluate/suites/") and n.endswith(".jsonl") for n in names), \
    "the builtin evaluation suites are missing from the wheel"
print(f"  {len(names)} files, top-level packages: {', '.join(top)}")
EOF

step "install it into a fresh venv"
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$WHEEL"

step "copy specs/realestate.dial with its includes (specs/shared/) and data files (data/realestate/)"
mkdir -p "$WORK/project/specs" "$WORK/project/data" "$WORK/home"
cp specs/realestate.dial "$WORK/project/specs/"
cp -R specs/shared "$WORK/project/specs/"
cp -R data/realestate "$WORK/project/data/"

cd "$WORK/project"
export HOME="$WORK/home"  # no user config or caches from this machine
# the spec reads ../data; with no version-control root here, its project is specs/ unless widened
export DIALC_ALLOW_PATH="$WORK/project"
unset PYTHONPATH
DIALC="$WORK/venv/bin/dialc"

step "dialc is the installed copy, not the checkout"
"$WORK/venv/bin/python" -c "import dialc, dialc.cli, sys; print('  ' + dialc.__file__); \
  sys.exit(0 if dialc.__file__.startswith('$WORK/venv/') else 1)"
"$DIALC" --version

step "dialc validate specs/realestate.dial"
"$DIALC" validate specs/realestate.dial

step "dialc validate --format json (no diagnostics)"
test "$("$DIALC" validate specs/realestate.dial --format json)" = "[]"

step "dialc compile specs/realestate.dial"
"$DIALC" compile specs/realestate.dial -o plan.json

step "dialc run specs/realestate.dial --dry-run"
"$DIALC" run specs/realestate.dial --dry-run --quiet

step "python -m dialc codes"
"$WORK/venv/bin/python" -m dialc codes > /dev/null

echo "check_wheel: OK ($(basename "$WHEEL") works outside the checkout)"
