#!/usr/bin/env bash
# The main job on the embedded default: builds hoist, checks the example manifests shipped in
# manifests/example, then promotes them for real: the source is the OCI layout committed in
# manifests/example/layout, the destinations are OCI layouts created under target/hoist-demo/,
# and the blob mirrors of manifests/backends.yaml are directories there too (no server needed).
# Then it audits every destination and mirror, and finally runs `hoist serve` (the registry.k8s.io
# redirector) over the result and pulls through it with skopeo: manifests from the production
# layout and blobs from the file: mirror, both served by hoist itself. Running it again is a no-op
# (the pull is redone); `rm -rf target/hoist-demo` starts afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
# The binary's path as cargo reports it (CARGO_TARGET_DIR and build.target-dir are honoured).
hoist=$(ci/build-hoist.sh)

echo "== hoist check (the presubmit)"
"$hoist" check --thin-manifest-dir manifests/example
echo
echo "== hoist promote --confirm (the postsubmit: registries, then blob mirrors)"
"$hoist" promote --thin-manifest-dir manifests/example --backends manifests/backends.yaml --confirm
echo
echo "== hoist audit --rehash (every destination and mirror, every byte)"
"$hoist" audit --thin-manifest-dir manifests/example --backends manifests/backends.yaml --rehash
echo
echo "== hoist snapshot of one destination"
"$hoist" snapshot oci:target/hoist-demo/prod-us/hello
echo
echo "== hoist serve (the redirector) and a pull through it: promote -> mirror -> serve -> pull"
# The upstream is the production layout (oci:DIR, served by hoist as a read-only registry); blob
# requests are redirected to the file: mirror of manifests/backends.yaml (served by hoist too).
command -v skopeo >/dev/null || { echo "skopeo is needed for the pull: run ci/install-deps.sh" >&2; exit 1; }
log=target/hoist-demo/serve.log
"$hoist" serve --upstream oci:target/hoist-demo/prod-us --backends manifests/backends.yaml \
  --listen 127.0.0.1:0 2>"$log" &
serve_pid=$!
trap 'kill -TERM "$serve_pid" 2>/dev/null || true' EXIT
address=
for _ in $(seq 100); do
  address=$(sed -n 's|^hoist serve: listening on http://||p' "$log")
  [ -n "$address" ] && break
  sleep 0.1
done
[ -n "$address" ] || { cat "$log" >&2; exit 1; }
echo "hoist serve --upstream oci:target/hoist-demo/prod-us --backends manifests/backends.yaml: http://$address"
rm -rf target/hoist-demo/pulled && mkdir -p target/hoist-demo/pulled
skopeo --insecure-policy copy --all --src-tls-verify=false \
  "docker://$address/hello:1.0" oci:target/hoist-demo/pulled/hello:1.0
kill -TERM "$serve_pid"
wait "$serve_pid"
trap - EXIT
echo "requests answered by hoist serve (rule, outcome):"
grep 'hoist_serve::access' "$log" | grep -o 'route="[a-z-]*" outcome="[a-z-]*"' | sort | uniq -c
echo "pulled into target/hoist-demo/pulled/hello (skopeo verified every digest)"
