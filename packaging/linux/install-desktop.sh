#!/usr/bin/env bash
# Install SegViewer's menu entry, AppStream metainfo and icons (SVG + PNG 16..512) the XDG way:
#   packaging/linux/install-desktop.sh [--prefix DIR] [--uninstall]
# into ${XDG_DATA_HOME:-~/.local/share}, or DIR/share with --prefix (e.g. --prefix /usr/local).
# The icons come from resources/icons/ (segviewer.svg and its renderings segviewer-<size>.png).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
app_id=io.github.segviewer.SegViewer
icon_dir="$repo/resources/icons"

datadir="${XDG_DATA_HOME:-$HOME/.local/share}"
uninstall=false
while (($#)); do
    case "$1" in
        --prefix) datadir="${2:?--prefix needs a folder}/share"; shift 2 ;;
        --uninstall) uninstall=true; shift ;;
        -h|--help) sed -n '2,5s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "install-desktop.sh: unknown option '$1' (use --prefix DIR, --uninstall)" >&2; exit 2 ;;
    esac
done

desktop="$datadir/applications/$app_id.desktop"
metainfo="$datadir/metainfo/$app_id.metainfo.xml"
icons="$datadir/icons/hicolor"

refresh_caches() {
    if command -v update-desktop-database >/dev/null; then
        update-desktop-database -q "$datadir/applications"
    fi
    if command -v gtk-update-icon-cache >/dev/null && [[ -f "$icons/index.theme" ]]; then
        gtk-update-icon-cache -q -t "$icons"
    fi
}

if $uninstall; then
    rm -f "$desktop" "$metainfo" "$icons/scalable/apps/$app_id.svg" "$icons"/*/apps/"$app_id.png"
    refresh_caches
    echo "removed SegViewer's desktop entry, metainfo and icons from $datadir"
    exit 0
fi

[[ -f "$icon_dir/segviewer.svg" ]] || {
    echo "install-desktop.sh: $icon_dir/segviewer.svg is missing; run from a complete checkout" >&2
    exit 2
}

# The menu runs `segviewer` from PATH; a checkout's venv is not on it, so point at its script.
exec_cmd=segviewer
if ! command -v segviewer >/dev/null && [[ -x "$repo/.venv/bin/segviewer" ]]; then
    exec_cmd="$repo/.venv/bin/segviewer"
fi

install_file() {  # install_file SOURCE TARGET: copy atomically, creating the folder
    mkdir -p "$(dirname "$2")"
    cp "$1" "$2.tmp"
    chmod 644 "$2.tmp"
    mv -f "$2.tmp" "$2"
}

install_file "$here/$app_id.metainfo.xml" "$metainfo"
install_file "$icon_dir/segviewer.svg" "$icons/scalable/apps/$app_id.svg"
for png in "$icon_dir"/segviewer-*.png; do
    size="${png##*/segviewer-}"
    size="${size%.png}"
    install_file "$png" "$icons/${size}x${size}/apps/$app_id.png"
done
exec_field="$exec_cmd"
[[ "$exec_cmd" == /* ]] && exec_field="\"$exec_cmd\""  # quoted: the path may hold spaces
mkdir -p "$(dirname "$desktop")"
sed -e "s|^Exec=segviewer |Exec=$exec_field |" -e "s|^TryExec=segviewer$|TryExec=$exec_cmd|" \
    "$here/$app_id.desktop" >"$desktop.tmp"
chmod 644 "$desktop.tmp"
mv -f "$desktop.tmp" "$desktop"
refresh_caches
echo "installed SegViewer's desktop entry (Exec=$exec_cmd), metainfo and icons into $datadir"
