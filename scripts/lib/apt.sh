# Shared by scripts/test, scripts/image and scripts/check-deploy: installs Debian
# packages that are missing. Sourced, not run.

APT_UPDATED=""
# ensure_apt PKG...: installs the Debian packages that are missing (apt-get update once).
ensure_apt() {
    local missing=() pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$pkg")
        fi
    done
    ((${#missing[@]} > 0)) || return 0
    if ! command -v apt-get >/dev/null; then
        echo "error: missing packages ${missing[*]} and no apt-get to install them" >&2
        return 1
    fi
    local sudo=()
    if ((EUID != 0)); then
        sudo=(sudo)
    fi
    if [[ -z "$APT_UPDATED" ]]; then
        "${sudo[@]}" apt-get update -qq
        APT_UPDATED=1
    fi
    echo "apt: installing ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
