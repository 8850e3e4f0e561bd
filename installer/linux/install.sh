#!/usr/bin/env bash
# Install FaceGuard from this unpacked folder: the program, a menu entry and the icon.
#
#   ./install.sh [--autostart] [--user | --system] [--dest DIR]
#   ./install.sh --uninstall [--remove-data] [--user | --system]
#
# As root the default is --system (/opt/FaceGuard, /usr/local/bin/faceguard, menu entry for
# every user); otherwise --user (~/.local/opt/FaceGuard, ~/.local/bin/faceguard).
# --autostart opens FaceGuard full screen when a user logs in (kiosk PCs).
# --uninstall keeps the data folder (enrolled people, entry log) unless --remove-data is
# given; the data folder is per user: ${XDG_DATA_HOME:-~/.local/share}/FaceGuard.
set -euo pipefail

APP=FaceGuard
ID=faceguard
SIZES="16 24 32 48 64 128 256 512"
HERE="$(cd "$(dirname "$0")" && pwd)"

mode=""
autostart=0
uninstall=0
remove_data=0
dest=""
while [ $# -gt 0 ]; do
    case "$1" in
        --user) mode=user ;;
        --system) mode=system ;;
        --autostart) autostart=1 ;;
        --uninstall) uninstall=1 ;;
        --remove-data) remove_data=1 ;;
        --dest) dest="$2"; shift ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$mode" ]; then
    if [ "$(id -u)" = 0 ]; then mode=system; else mode=user; fi
fi

data_home="${XDG_DATA_HOME:-$HOME/.local/share}"
if [ "$mode" = system ]; then
    target="${dest:-/opt/$APP}"
    bin_dir=/usr/local/bin
    apps=/usr/share/applications
    icons=/usr/share/icons/hicolor
    autostart_dir=/etc/xdg/autostart
else
    target="${dest:-$HOME/.local/opt/$APP}"
    bin_dir="$HOME/.local/bin"
    apps="$data_home/applications"
    icons="$data_home/icons/hicolor"
    autostart_dir="${XDG_CONFIG_HOME:-$HOME/.config}/autostart"
fi

refresh_menus() {
    command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$apps" || true
    command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$icons" || true
}

# Only ever delete a folder that holds a FaceGuard bundle.
remove_program() {
    if [ -d "$target" ]; then
        if [ -x "$target/$APP" ] && [ -d "$target/_internal/resources" ]; then
            rm -rf "$target"
        elif [ -z "$(ls -A "$target")" ]; then
            rmdir "$target"
        else
            echo "install.sh: $target does not look like a FaceGuard folder; left alone" >&2
            exit 1
        fi
    fi
}

if [ "$uninstall" = 1 ]; then
    remove_program
    rm -f "$bin_dir/$ID" "$apps/$ID.desktop" "$autostart_dir/$ID.desktop"
    for size in $SIZES; do rm -f "$icons/${size}x${size}/apps/$ID.png"; done
    refresh_menus
    data="${FACEGUARD_DATA_DIR:-$data_home/$APP}"
    if [ "$remove_data" = 1 ]; then
        rm -rf "$data"
        echo "FaceGuard removed, with its data folder $data"
    else
        echo "FaceGuard removed; its data folder is kept: $data"
    fi
    exit 0
fi

if [ ! -x "$HERE/$APP" ] || [ ! -d "$HERE/_internal/resources" ]; then
    echo "install.sh: run me from the unpacked FaceGuard folder (no $HERE/$APP)" >&2
    exit 1
fi

if [ "$HERE" != "$(realpath -m "$target")" ]; then
    remove_program
    mkdir -p "$target"
    cp -a "$HERE/." "$target/"
fi

mkdir -p "$bin_dir" "$apps"
ln -sfn "$target/$APP" "$bin_dir/$ID"
for size in $SIZES; do
    source_icon="$target/_internal/resources/icons/${ID}_${size}.png"
    if [ -f "$source_icon" ]; then
        mkdir -p "$icons/${size}x${size}/apps"
        cp "$source_icon" "$icons/${size}x${size}/apps/$ID.png"
    fi
done

# The menu entry runs the installed program by its absolute path.
exec_path="\"$target/$APP\""
sed -e "s|^Exec=$APP\$|Exec=$exec_path|" -e "s|^Exec=$APP |Exec=$exec_path |" \
    "$target/$ID.desktop" > "$apps/$ID.desktop"
chmod 644 "$apps/$ID.desktop"
if [ "$autostart" = 1 ]; then
    mkdir -p "$autostart_dir"
    sed -e "s|^Exec=$APP\$|Exec=$exec_path --kiosk|" -e "s|^Exec=$APP |Exec=$exec_path |" \
        -e "/^Type=Application\$/a X-GNOME-Autostart-enabled=true" \
        "$target/$ID.desktop" > "$autostart_dir/$ID.desktop"
fi
refresh_menus

echo "FaceGuard installed in $target"
echo "  menu entry: $apps/$ID.desktop"
echo "  command:    $bin_dir/$ID (try: $ID --self-test)"
[ "$autostart" = 1 ] && echo "  starts full screen at login: $autostart_dir/$ID.desktop"
exit 0
