#!/usr/bin/env bash
# Builds the real `helm` (helm.sh/helm/v3, the version pinned in go.mod) from the Go
# module proxy into a cache outside the repo (tools/go-tool.sh, like kubeconform and
# kube-score). Prints the bin directory on stdout; progress goes to stderr. A cached build
# (same go.mod/go.sum, flags and Go) is reused in well under a second.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

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
exec bash "$here/../go-tool.sh" helm "$ldflags"
