#!/usr/bin/env bash
# Build the one-folder app with PyInstaller (installed into the venv first if missing):
#   packaging/build.sh [--dist DIR] [--work DIR]     -> DIR/segviewer/segviewer (default dist/)
# PYTHON picks the interpreter that has SegViewer installed (default: the checkout's .venv).
set -euo pipefail
cd "$(dirname "$0")/.."

dist=dist
work=build/pyinstaller
while (($#)); do
    case "$1" in
        --dist) dist="${2:?--dist needs a folder}"; shift 2 ;;
        --work) work="${2:?--work needs a folder}"; shift 2 ;;
        *) echo "build.sh: unknown option '$1' (use --dist DIR, --work DIR)" >&2; exit 2 ;;
    esac
done

python="${PYTHON:-.venv/bin/python}"
if ! "$python" -c "import segviewer" 2>/dev/null; then
    echo "build.sh: SegViewer is not installed for '$python': run ./install.sh, or set PYTHON" >&2
    exit 2
fi
"$python" -c "import PyInstaller" 2>/dev/null || "$python" -m pip install -q "pyinstaller>=6.10"

"$python" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$dist" --workpath "$work" packaging/pyinstaller/segviewer.spec
echo "built $dist/segviewer/segviewer"
