#!/usr/bin/env bash
# Set up SegViewer from this checkout on a Debian/Ubuntu machine with Python 3.11+:
# the Qt runtime libraries (apt-get, only those missing), a virtualenv in .venv, and the package.
#   ./install.sh          the app
#   ./install.sh --test   the app and the test tools
set -euo pipefail
cd "$(dirname "$0")"

extras=""
[[ "${1:-}" == "--test" ]] && extras="[test]"

# Qt needs these at run time even offscreen; xcb ones only for a real (or Xvfb) screen.
system_packages=(python3-venv libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1
    libdbus-1-3 fonts-dejavu-core libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0
    libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1
    desktop-file-utils appstream)  # the last two validate packaging/linux in the tests
missing=()
for pkg in "${system_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    echo "installing system packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# Strict editable install: the package's files linked into build/__editable__.*, found through a
# plain path, where the default mode imports a finder at every start of every command (~50 ms of
# CPU per start). Edits show at once; a new module or resource file needs this script again.
.venv/bin/python -m pip install -q -e ".${extras}" --config-settings editable_mode=strict
