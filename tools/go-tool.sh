#!/usr/bin/env bash
# Builds the one `tool` named in tools/<name>/go.mod (its version pinned there, every module
# checked against go.sum) from the Go module proxy into a cache outside the repo, for
# tools/<name>/build.sh. Usage: go-tool.sh <name> [ldflags]; the default ldflags set
# `main.version` (what kubeconform and kube-score print). Prints the bin directory on stdout;
# progress goes to stderr. A cached build (same go.mod/go.sum, flags and Go) is reused in well
# under a second.
set -euo pipefail
name=$1
here=$(cd "$(dirname "$0")/$name" && pwd)
cache_root=${VENUE_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/venue-operator}
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

package=$(awk '$1=="tool" {print $2; exit}' "$here/go.mod")
module=${package%/cmd/*}
version=$(awk -v m="$module" '$1==m {print $2; exit}' "$here/go.mod")
ldflags=${2:-"-s -w -X main.version=${version}"}

key=$( { cat "$here"/go.{mod,sum}; echo "$ldflags"; go version; } | sha256sum | cut -c1-12)
out="$cache_root/$name/${version}_${key}"
bin="$out/bin"

if [[ -f "$out/.complete" ]]; then
  echo "$bin"
  exit 0
fi

log() { printf '[%s-build] %s\n' "$name" "$*" >&2; }
mkdir -p "$bin"
log "building $name ${version} into $out (a cold build takes a few minutes on 2 cores)"
started=$SECONDS
( cd "$here" && go build -trimpath -ldflags "$ldflags" -o "$bin/$name" "$package" )
touch "$out/.complete"
log "$name ready in $bin ($((SECONDS - started)) s)"
echo "$bin"
