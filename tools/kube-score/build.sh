#!/usr/bin/env bash
# Builds `kube-score` (the version pinned in go.mod) from the Go module proxy into a cache outside
# the repo (tools/go-tool.sh); prints its bin directory. Used by tests/manifest_checks.py.
exec bash "$(dirname "$0")/../go-tool.sh" kube-score
