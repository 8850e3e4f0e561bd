#!/usr/bin/env bash
# Build the Linux one-folder bundle of FaceGuard and its tarball:
#   dist/FaceGuard/                              the program (FaceGuard), its libraries and resources,
#                                                faceguard.desktop, faceguard.png and install.sh
#   dist/FaceGuard-<version>-linux-<arch>.tar.gz the same folder, to copy to a kiosk PC
#
# Usage: installer/build_linux.sh [--release] [--venv DIR] [--dist DIR] [--work DIR]
#   --release  refuse to build without the product embedder (resources/models)
#   --venv     the build's own virtual environment (default build/dist-venv); made if missing
#              and filled with FaceGuard's runtime dependencies and PyInstaller only, so that
#              nothing from a development environment (torch, dlib, test tools) can leak in
#   --dist     output folder (default dist); --work: PyInstaller's work folder (build/pyinstaller)
# PYTHON selects the interpreter for a new venv (default python3; 3.11 or newer).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/build/dist-venv"
DIST="$ROOT/dist"
WORK="$ROOT/build/pyinstaller"
PYTHON="${PYTHON:-python3}"
RELEASE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --release) RELEASE=1 ;;
        --venv) VENV="$2"; shift ;;
        --dist) DIST="$2"; shift ;;
        --work) WORK="$2"; shift ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build_linux.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
mkdir -p "$DIST" "$WORK"
DIST="$(cd "$DIST" && pwd)"
WORK="$(cd "$WORK" && pwd)"
step() { printf '\n== %s\n' "$*"; }

cd "$ROOT"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "build_linux.sh: $PYTHON is older than Python 3.11" >&2; exit 1; }
VERSION="$("$PYTHON" installer/bundle_config.py version)"
ARCH="$(uname -m)"

step "build environment $VENV"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
REQUIREMENTS="$WORK/requirements-dist.txt"
"$PYTHON" installer/bundle_config.py requirements > "$REQUIREMENTS"
STAMP="$VENV/.faceguard-dist-requirements"
if ! cmp -s "$REQUIREMENTS" "$STAMP"; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
    cp "$REQUIREMENTS" "$STAMP"
fi
"$VENV/bin/python" -I - <<'EOF'
import importlib.util, sys
leaks = [m for m in ("torch", "dlib", "pytest", "faceguard") if importlib.util.find_spec(m)]
if leaks:
    sys.exit(f"build_linux.sh: the build venv is not clean (has {', '.join(leaks)}); "
             "use a fresh --venv")
import PyInstaller
print(f"PyInstaller {PyInstaller.__version__} on Python {sys.version.split()[0]}")
EOF

step "PyInstaller (installer/faceguard.spec)"
FACEGUARD_RELEASE="$RELEASE" "$VENV/bin/python" -m PyInstaller --noconfirm --clean \
    --log-level WARN --distpath "$DIST" --workpath "$WORK" installer/faceguard.spec

APP_DIR="$DIST/FaceGuard"
step "desktop integration files"
install -m 644 installer/linux/faceguard.desktop "$APP_DIR/faceguard.desktop"
install -m 644 resources/icons/faceguard_256.png "$APP_DIR/faceguard.png"
install -m 755 installer/linux/install.sh "$APP_DIR/install.sh"
ls "$APP_DIR"

step "bundle check"
"$VENV/bin/python" installer/bundle_config.py verify "$APP_DIR"
"$APP_DIR/FaceGuard" --version

step "tarball"
TARBALL="$DIST/FaceGuard-$VERSION-linux-$ARCH.tar.gz"
tar --sort=name --owner=0 --group=0 --numeric-owner -C "$DIST" -czf "$TARBALL" FaceGuard
echo "$(du -sh "$APP_DIR" | cut -f1)	$APP_DIR"
echo "$(du -sh "$TARBALL" | cut -f1)	$TARBALL"
echo "AppImage: not built (appimagetool and its runtime are not available from PyPI or Debian)"
echo "Try it: $APP_DIR/FaceGuard --self-test"
