#!/usr/bin/env bash
# Every test: set-up, then the guest SDKs' own tests (cargo test, go test) and the host's pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
./scripts/setup.sh

rust_env=(env PATH=/usr/sbin:/usr/bin:/sbin:/bin RUSTC=/usr/bin/rustc CARGO_HOME="$ROOT/build/cargo-home")
echo "== cargo test: Rust SDK and examples (native) =="
(cd sdk/rust && "${rust_env[@]}" /usr/bin/cargo test -q --offline)
(cd guest_examples/rust && "${rust_env[@]}" /usr/bin/cargo test -q --offline)

echo "== go test: Go SDK and examples (native) =="
go_env=(env GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod)
for dir in sdk/go guest_examples/go/*/; do
  [ -f "$dir/go.mod" ] || continue
  (cd "$dir" && "${go_env[@]}" "$ROOT/.venv/bin/go" test ./...)
done
# the SDK again as the examples are built: without the mw_on_response export
(cd sdk/go && "${go_env[@]}" "$ROOT/.venv/bin/go" test -tags mw_noresponse ./...)

echo "== pytest: host =="
.venv/bin/python -m pytest "$@"
