# shellcheck shell=bash
# The Python environment for the project's Python tooling (scripts/make-models,
# scripts/bench-kernels). Source it from a bash script:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"   # then run "$ACTORSERVE_PYTHON" ...
#
# or run it on its own (`bash scripts/venv.sh`) to create or update the venv.
#
# The venv lives OUTSIDE the repository, in ~/.cache/actorserve/venv (override with
# ACTORSERVE_VENV=/path). It is made from Debian's /usr/bin/python3 with --system-site-packages,
# so it sees Debian's python3-torch (CPU torch) and python3-numpy; scripts/python-requirements.txt
# adds onnx, onnxruntime, scikit-learn and skl2onnx. Never pip-install torch.
#
# Another requirements file makes another venv: ACTORSERVE_VENV_REQUIREMENTS=FILE (a path; a
# relative one is relative to the current directory). Its default venv is named after the file,
# ~/.cache/actorserve/venv-NAME for NAME-requirements.txt (scripts/test-requirements.txt ->
# venv-test, which scripts/test makes for the end-to-end tests); ACTORSERVE_VENV still overrides
# it. Such a venv needs only python3-venv from apt (no python3-torch), and no torch check runs.
#
# Idempotent and fast when nothing changed: the venv stores the hash of the requirements file
# (and of the base Python's version); only a different hash runs pip. python3-torch (tooling venv
# only) and python3-venv are installed with apt-get when missing (as root, else sudo). Concurrent
# callers are serialized with flock. ACTORSERVE_VENV_REBUILD=1 deletes and recreates the venv.
#
# Sets and exports ACTORSERVE_VENV and ACTORSERVE_PYTHON (the venv's python). Returns/exits
# non-zero, with a message on stderr, when it cannot.

_actorserve_venv_log() { echo "venv: $*" >&2; }

# Installs those of the Debian packages named as arguments that are missing.
_actorserve_venv_apt() {
  local pkg missing=()
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  [ "${#missing[@]}" -eq 0 ] && return 0

  local as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      _actorserve_venv_log "missing ${missing[*]}; not root and sudo is not available"
      return 1
    fi
    as_root=(sudo)
  fi
  _actorserve_venv_log "installing ${missing[*]} with apt-get"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || return 1
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 || return 1
}

# The stamp: requirements file hash + base interpreter version. Empty on failure.
_actorserve_venv_stamp() {
  local requirements="$1" py_version
  py_version="$(/usr/bin/python3 -c 'import sys; print(sys.version)' 2>/dev/null)" || return 1
  { cat "$requirements"; echo "python: $py_version"; } | sha256sum | cut -d' ' -f1
}

_actorserve_venv_up_to_date() {
  local venv="$1" stamp="$2"
  [ -n "$stamp" ] && [ -x "$venv/bin/python" ] && [ -f "$venv/.requirements.sha256" ] &&
    [ "$(cat "$venv/.requirements.sha256")" = "$stamp" ] &&
    [ "${ACTORSERVE_VENV_REBUILD:-0}" != 1 ]
}

# Runs with the lock held (in a subshell). $4 = 1 for the tooling venv (torch check).
_actorserve_venv_build() {
  local venv="$1" requirements="$2" stamp="$3" tooling="$4"
  # Someone else may have finished it while we waited for the lock.
  _actorserve_venv_up_to_date "$venv" "$stamp" && return 0

  # A venv that does not run, or was not made from Debian's python3, is made anew.
  local remove=0
  if [ "${ACTORSERVE_VENV_REBUILD:-0}" = 1 ]; then
    remove=1
  elif [ -e "$venv" ]; then
    if ! "$venv/bin/python" -c 'pass' >/dev/null 2>&1 ||
       ! grep -qx 'home = /usr/bin' "$venv/pyvenv.cfg" 2>/dev/null ||
       ! grep -qx 'include-system-site-packages = true' "$venv/pyvenv.cfg" 2>/dev/null; then
      remove=1
    fi
  fi
  if [ "$remove" = 1 ] && [ -e "$venv" ]; then
    _actorserve_venv_log "removing $venv (rebuild asked, or unusable, or not from Debian's python3)"
    rm -rf "$venv"
  fi
  if [ ! -x "$venv/bin/python" ]; then
    _actorserve_venv_log "creating $venv (Debian python3, --system-site-packages)"
    mkdir -p "$(dirname "$venv")"
    /usr/bin/python3 -m venv --system-site-packages "$venv" || return 1
  fi

  _actorserve_venv_log "installing $requirements"
  rm -f "$venv/.requirements.sha256"
  "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q \
    -r "$requirements" >&2 || return 1

  if [ "$tooling" = 1 ]; then
    # Torch must be Debian's (system site-packages), numpy the one it was built against.
    "$venv/bin/python" - <<'EOF' >&2 || return 1
import numpy, onnx, onnxruntime, sklearn, skl2onnx, torch
if not torch.__file__.startswith("/usr/lib/python3/dist-packages/"):
    raise SystemExit(f"venv: torch should be Debian's python3-torch, found {torch.__file__}")
print(f"venv: torch {torch.__version__}, numpy {numpy.__version__}, onnx {onnx.__version__}, "
      f"onnxruntime {onnxruntime.__version__}, scikit-learn {sklearn.__version__}, "
      f"skl2onnx {skl2onnx.__version__}")
EOF
  fi
  echo "$stamp" >"$venv/.requirements.sha256.tmp" &&
    mv "$venv/.requirements.sha256.tmp" "$venv/.requirements.sha256"
}

actorserve_venv() {
  local root venv requirements stamp tooling=1 name
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  requirements="$root/scripts/python-requirements.txt"
  venv="$HOME/.cache/actorserve/venv"
  if [ -n "${ACTORSERVE_VENV_REQUIREMENTS:-}" ] &&
     [ "$(realpath -m "$ACTORSERVE_VENV_REQUIREMENTS")" != "$requirements" ]; then
    requirements="$(realpath -m "$ACTORSERVE_VENV_REQUIREMENTS")"
    tooling=0
    name="$(basename "$requirements" .txt)"
    venv="$HOME/.cache/actorserve/venv-${name%-requirements}"
  fi
  venv="${ACTORSERVE_VENV:-$venv}"
  export ACTORSERVE_VENV="$venv" ACTORSERVE_PYTHON="$venv/bin/python"

  if [ "$tooling" = 1 ]; then
    _actorserve_venv_apt python3-torch python3-venv || return 1
  else
    _actorserve_venv_apt python3-venv || return 1
  fi
  stamp="$(_actorserve_venv_stamp "$requirements")" || stamp=""
  if [ -z "$stamp" ]; then
    _actorserve_venv_log "cannot read $requirements or run /usr/bin/python3"
    return 1
  fi
  _actorserve_venv_up_to_date "$venv" "$stamp" && return 0

  mkdir -p "$(dirname "$venv")" || return 1
  (
    flock 9 || exit 1
    _actorserve_venv_build "$venv" "$requirements" "$stamp" "$tooling"
  ) 9>"$venv.lock" || { _actorserve_venv_log "failed to prepare $venv"; return 1; }
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  # Run directly.
  set -euo pipefail
  actorserve_venv
  echo "venv: ready: $ACTORSERVE_PYTHON"
else
  actorserve_venv || return 1
fi
