#!/usr/bin/env bash
# Installs the system packages the tests use, when they are missing:
# - docker-registry: the CNCF distribution registry (registry:2), real servers for the tests;
# - skopeo: the peer tool, for cross-checks and the benchmark;
# - apache2-utils: htpasswd, for a registry with basic auth;
# - git, tar: `hoist check --base` reads the base revision with them;
# - zsh, fish, groff-base: the completion scripts and manual pages are checked in them.
# - containerd: a real client (ctr) pulling through `hoist serve`; the tests start their own
#   daemon on a private socket, never the system service.
# and then, through ci/install-mirror-servers.sh, s3s-fs and fake-gcs-server.
set -euo pipefail

packages=(docker-registry skopeo apache2-utils git tar zsh fish groff-base containerd)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done

# The object-store servers of the blob-mirror tests (s3s-fs, fake-gcs-server).
bash "$(dirname "$0")/install-mirror-servers.sh"
