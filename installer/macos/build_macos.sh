#!/usr/bin/env bash
# Build FaceGuard for macOS: dist/FaceGuard.app (from installer/faceguard.spec's BUNDLE) and
# a disk image dist/FaceGuard-<version>-macos-<arch>.dmg to copy it to the kiosk Mac.
#   installer/macos/build_macos.sh [--release]
# Needs Python 3.11+ (python.org or Homebrew). The app is not signed: on the kiosk Mac open it
# once with right-click > Open, or sign it (codesign) with your Developer ID before shipping.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
VENV="$ROOT/build/dist-venv"
WORK="$ROOT/build/pyinstaller"
PYTHON="${PYTHON:-python3}"
RELEASE=0
[ "${1:-}" = "--release" ] && RELEASE=1
mkdir -p "$WORK" dist

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$PYTHON" installer/bundle_config.py requirements > "$WORK/requirements-dist.txt"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$WORK/requirements-dist.txt"

FACEGUARD_RELEASE="$RELEASE" "$VENV/bin/python" -m PyInstaller --noconfirm --clean \
    --log-level WARN --distpath dist --workpath "$WORK" installer/faceguard.spec

APP="dist/FaceGuard.app"
"$VENV/bin/python" installer/bundle_config.py verify "$APP"
"$APP/Contents/MacOS/FaceGuard" --self-test || echo "warning: self-test failed (see above)" >&2

VERSION="$("$PYTHON" installer/bundle_config.py version)"
DMG="dist/FaceGuard-$VERSION-macos-$(uname -m).dmg"
rm -f "$DMG"
hdiutil create -volname FaceGuard -srcfolder "$APP" -ov -format UDZO "$DMG"
echo "built $APP and $DMG"
