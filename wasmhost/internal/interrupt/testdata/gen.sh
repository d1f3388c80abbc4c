#!/bin/sh
# Regenerates the committed .wasm files from their .wat sources. Needs
# wat2wasm from WABT (Debian: apt-get install -y wabt). Tests use the
# committed .wasm files and never need WABT.
set -eu
cd "$(dirname "$0")"
for wat in *.wat; do
	wat2wasm --enable-tail-call "$wat" -o "${wat%.wat}.wasm"
done
