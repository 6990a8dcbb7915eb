# Shared by scripts/test and scripts/build-npm: the wasm-bindgen CLI at exactly the
# version Cargo.lock pins, installed once into $TOOLS_DIR (callers set TOOLS_DIR and put
# $TOOLS_DIR/bin on PATH). Sourced, not run.

# The wasm-bindgen version that Cargo.lock resolved (there must be exactly one).
locked_wasm_bindgen_version() {
    local versions
    versions=$(awk '
        /^\[\[package\]\]/ { name = "" }
        /^name = / { name = $3 }
        /^version = / && name == "\"wasm-bindgen\"" { gsub(/"/, "", $3); print $3 }
    ' Cargo.lock)
    if [[ -z "$versions" ]]; then
        echo "error: no wasm-bindgen package in Cargo.lock" >&2
        return 1
    fi
    if [[ $(wc -l <<<"$versions") -ne 1 ]]; then
        echo "error: several wasm-bindgen versions in Cargo.lock: $(tr '\n' ' ' <<<"$versions")" >&2
        return 1
    fi
    echo "$versions"
}

# Installs wasm-bindgen-cli (wasm-bindgen, wasm-bindgen-test-runner) at exactly the
# version in Cargo.lock into $TOOLS_DIR; the library and CLI must match exactly.
ensure_wasm_bindgen_cli() {
    local version
    version=$(locked_wasm_bindgen_version)
    if wasm_bindgen_cli_is "$version"; then
        echo "wasm-bindgen-cli $version: cached in $TOOLS_DIR"
        return 0
    fi
    mkdir -p "$TOOLS_DIR"
    # Serialise concurrent runs that share the cache; re-check once we hold the lock.
    exec 9>"$TOOLS_DIR/.install.lock"
    if command -v flock >/dev/null; then
        flock 9
    fi
    if ! wasm_bindgen_cli_is "$version"; then
        echo "installing wasm-bindgen-cli $version into $TOOLS_DIR (takes a few minutes once)"
        # Own target dir (cargo's temporary one), not the tests': keeps that cache clean.
        (cd "$TOOLS_DIR" && env -u CARGO_TARGET_DIR \
            cargo install wasm-bindgen-cli --version "=$version" --locked --root "$TOOLS_DIR")
    fi
    exec 9>&-
    if ! wasm_bindgen_cli_is "$version"; then
        echo "error: wasm-bindgen-cli $version is not usable after installing" >&2
        return 1
    fi
}

wasm_bindgen_cli_is() {
    local want=$1 tool
    for tool in wasm-bindgen wasm-bindgen-test-runner; do
        [[ -x "$TOOLS_DIR/bin/$tool" ]] || return 1
        [[ "$("$TOOLS_DIR/bin/$tool" --version 2>/dev/null)" == "$tool $want" ]] || return 1
    done
}

