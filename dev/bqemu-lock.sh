#!/usr/bin/env bash
# dev/bqemu-lock.sh — rewrite the hashes of dev/bqemu-requirements.txt.
#
# Usage: dev/bqemu-lock.sh
#
# dev/bqemu.sh installs the emulator with `pip install --require-hashes --only-binary=:all:`
# from dev/bqemu-requirements.txt. To change a version, edit its `name==version` line there and
# run this script: it keeps the pins as they are, downloads each pinned package's wheels with
# pip (no dependencies) for every CPython dev/bqemu.sh accepts (3.11, 3.12, 3.13) on manylinux
# x86_64, and writes the sha256 of each distinct wheel beside its pin (a pure-Python wheel has
# one). It then resolves the whole lock, dependencies included, with --require-hashes for each
# of those Pythons, so a lock that misses a dependency or a wheel fails here rather than on a
# newcomer's machine. Uses the pip of BQEMU_PYTHON (default python3). Needs network access.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCK="$ROOT/dev/bqemu-requirements.txt"
PY="${BQEMU_PYTHON:-python3}"
PY_VERSIONS=(3.11 3.12 3.13)
# Most preferred first: manylinux_2_17 (= manylinux2014) runs on the oldest glibc; a package
# with no such wheel gets its manylinux_2_28 one.
PLATFORMS=(--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64)

log() { printf 'bqemu-lock: %s\n' "$*" >&2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/bqemu-lock.XXXXXX")"
trap 'rm -rf "$work" "$LOCK.tmp"' EXIT

# The pins, one `name==version` (or `name[extra]==version`) a line, without the hashes.
sed -n 's/^\([A-Za-z0-9][][A-Za-z0-9,._-]*==[^ \\]*\).*/\1/p' "$LOCK" >"$work/pins.txt"
[ -s "$work/pins.txt" ] || { log "no pins found in $LOCK"; exit 1; }

pip_download() { # pip_download <python version> <dir> <pip args...>
  local v="$1" dir="$2"; shift 2
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$PY" -m pip download --no-input -q --only-binary=:all: \
    --implementation cp --python-version "$v" "${PLATFORMS[@]}" -d "$dir" "$@" >&2
}

for v in "${PY_VERSIONS[@]}"; do
  log "downloading $(wc -l <"$work/pins.txt") pinned packages for CPython $v"
  pip_download "$v" "$work/wheels" --no-deps -r "$work/pins.txt"
done

"$PY" - "$work/pins.txt" "$work/wheels" "$LOCK.tmp" <<'PY'
import hashlib, pathlib, re, sys

pins_file, wheels, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]

def canon(name):  # the normalised project name (PEP 503)
    return re.sub(r"[-_.]+", "-", name).lower()

hashes = {}
for whl in sorted(wheels.glob("*.whl")):
    digest = hashlib.sha256(whl.read_bytes()).hexdigest()
    hashes.setdefault(canon(whl.name.split("-")[0]), set()).add(digest)

lines = [
    "# Hash-checked lock of the BigQuery emulator's Python packages, installed by dev/bqemu.sh with",
    "# `pip install --require-hashes --only-binary=:all:`. Every package is pinned; each hash is a",
    "# wheel for CPython 3.11, 3.12 or 3.13 on manylinux x86_64, as pip downloaded it.",
    "# To change a version: edit its line, then run dev/bqemu-lock.sh (it rewrites the hashes).",
]
for pin in pins_file.read_text().split():
    name = pin.split("==")[0].split("[")[0]
    found = sorted(hashes.get(canon(name), ()))
    if not found:
        sys.exit(f"bqemu-lock: no wheel downloaded for {pin}")
    lines.append(pin + " \\")
    lines += [f"    --hash=sha256:{h}" + (" \\" if i < len(found) - 1 else "") for i, h in enumerate(found)]
pathlib.Path(out).write_text("\n".join(lines) + "\n")
PY

for v in "${PY_VERSIONS[@]}"; do
  log "checking that the lock resolves, hashes required, for CPython $v"
  pip_download "$v" "$work/check-$v" --require-hashes -r "$LOCK.tmp"
done
mv -f "$LOCK.tmp" "$LOCK"
log "wrote $LOCK"
