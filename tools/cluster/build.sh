#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok) from Go modules into a cache outside the repo.
# Prints the bin directory on stdout; progress goes to stderr. A cached build
# (same go.mod/go.sum/script) is reused in well under a second.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${VENUE_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/venue-operator}
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

mod_version() { awk -v m="$2" '$1==m {print $2; exit} $1=="require" && $2==m {print $3; exit}' "$here/$1/go.mod"; }
k8s_version=$(mod_version k8s k8s.io/kubernetes)
etcd_version=$(awk '$1=="go.etcd.io/etcd/server/v3" {print $2; exit}' "$here/etcd/go.mod")
kwok_version=$(awk '$1=="sigs.k8s.io/kwok" {print $2; exit}' "$here/kwok/go.mod")

minor=${k8s_version#v1.}; minor=${minor%%.*}
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=${k8s_version} -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor}"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
kwok_ldflags="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${kwok_version}"

# The cache key covers everything that changes the binaries: module graphs and flags.
key=$( { cat "$here"/{k8s,etcd,kwok}/go.{mod,sum}; echo "$k8s_ldflags $kwok_ldflags"; go version; } | sha256sum | cut -c1-12)
out="$cache_root/cluster/k8s-${k8s_version}_etcd-${etcd_version}_kwok-${kwok_version}_${key}"
bin="$out/bin"

# kwok ships its stage definitions (how fake nodes and pods move through their
# lifecycle) as YAML in its module; the launcher passes them with --config.
write_kwok_stages() {
  local dir
  dir=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  local stage="$dir/kustomize/stage"
  for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo "---"; cat "$stage/$f"
  done > "$out/kwok-stages.yaml.tmp"
  mv "$out/kwok-stages.yaml.tmp" "$out/kwok-stages.yaml"
}

if [[ -f "$out/.complete" ]]; then
  [[ -f "$out/kwok-stages.yaml" ]] || write_kwok_stages
  echo "$bin"
  exit 0
fi

log() { printf '[cluster-build] %s\n' "$*" >&2; }
mkdir -p "$bin"
log "building the local control plane into $out"
log "k8s ${k8s_version}, etcd ${etcd_version}, kwok ${kwok_version}; a cold build takes 15-30 min on 2 cores, later runs reuse it"

# go build -v names each package as it is compiled: count them as progress.
build() {
  local dir=$1 ldflags=$2; shift 2
  local started=$SECONDS count=0
  ( cd "$here/$dir" && go build -v -trimpath -ldflags "$ldflags" -o "$bin/" "$@" ) 2>&1 |
    while IFS= read -r line; do
      count=$((count + 1))
      if [[ "$line" == *.go:* || "$line" == "#"* || "$line" == go:* ]]; then printf '%s\n' "$line" >&2; fi
      if (( count % 200 == 0 )); then log "$dir: $count packages compiled ($((SECONDS - started)) s)"; fi
    done
  local rc=${PIPESTATUS[0]}
  (( rc == 0 )) || { log "$dir build failed (exit $rc)"; exit "$rc"; }
  log "$dir: done in $((SECONDS - started)) s"
}

build etcd "-s -w" go.etcd.io/etcd/server/v3
mv -f "$bin/server" "$bin/etcd"  # the main package is the module root, named "server"
build kwok "$kwok_ldflags" sigs.k8s.io/kwok/cmd/kwok
build k8s "$k8s_ldflags" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl

for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok; do
  [[ -x "$bin/$b" ]] || { log "missing $bin/$b after build"; exit 1; }
done
write_kwok_stages
touch "$out/.complete"
log "control plane ready in $bin"
echo "$bin"
