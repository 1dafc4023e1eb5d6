#!/usr/bin/env bash
# Runs every fuzz target for a short, fixed budget (FUZZTIME, default 100000x:
# an execution count). A count, not a duration: Go 1.26's fuzz coordinator can
# report a spurious "context deadline exceeded" when a -fuzztime duration
# expires mid-execution (golang/go#75804, fixed in Go 1.27); a count has no
# deadline to race. A real finding still fails and writes testdata/fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-100000x}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz: $pkg $f ($t)"
    go test -run='^$' -fuzz="^$f\$" -fuzztime="$t" "$pkg"
  done
done
