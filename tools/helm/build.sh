#!/usr/bin/env bash
# Builds the real `helm` (helm.sh/helm/v3, the version pinned in go.mod) from the Go
# module proxy into a cache outside the repo, like tools/cluster/build.sh. Prints the
# bin directory on stdout; progress goes to stderr. A cached build (same go.mod/go.sum,
# flags and Go) is reused in well under a second.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${VENUE_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/venue-operator}
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

helm_version=$(awk '$1=="helm.sh/helm/v3" {print $2; exit}' "$here/go.mod")
client_go=$(awk '$1=="k8s.io/client-go" {print $2; exit}' "$here/go.mod")
# Helm's Makefile: the Kubernetes version it reports (.Capabilities.KubeVersion without a
# cluster, and lint's deprecation checks) is client-go's v0.MINOR read as v1.MINOR.
k8s_minor=${client_go#v0.}; k8s_minor=${k8s_minor%%.*}
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${helm_version}"
ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=${k8s_minor}"
done

key=$( { cat "$here"/go.{mod,sum}; echo "$ldflags"; go version; } | sha256sum | cut -c1-12)
out="$cache_root/helm/${helm_version}_${key}"
bin="$out/bin"

if [[ -f "$out/.complete" ]]; then
  echo "$bin"
  exit 0
fi

log() { printf '[helm-build] %s\n' "$*" >&2; }
mkdir -p "$bin"
log "building helm ${helm_version} into $out (a cold build takes a few minutes on 2 cores)"
started=$SECONDS
( cd "$here" && go build -trimpath -ldflags "$ldflags" -o "$bin/helm" helm.sh/helm/v3/cmd/helm )
"$bin/helm" version --short >&2
touch "$out/.complete"
log "helm ready in $bin ($((SECONDS - started)) s)"
echo "$bin"
