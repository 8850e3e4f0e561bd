"""Write synthetic presentation attacks (re-photographed prints, screen replays) of live photos.

Usage::

    python tools/make_attacks.py LIVE_DIR [LIVE_DIR ...] --out ATTACK_DIR [--kinds print screen]
        [--every N] [--limit N] [--seed S]

For each image under the live folders (recursive) it writes ``ATTACK_DIR/print/...png`` and
``ATTACK_DIR/screen/...png`` (see :mod:`faceguard.evaluation.attacks` for what each imitates).
``--every N`` takes every N-th image of each folder (a spread-out subset of LFW, say).
Then measure with ``faceguard eval liveness --live LIVE_DIR --attack ATTACK_DIR``.

The attacks are synthetic: no substitute for a certified ISO/IEC 30107-3 test, and nothing
measured with them claims conformance.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from faceguard.evaluation.attacks import ATTACK_KINDS, SYNTHETIC_NOTE, image_files, write_attacks


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, write the attacks, print how many."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("live", nargs="+", type=Path, help="folders of live face photos")
    parser.add_argument("--out", type=Path, required=True, help="folder for the attacks")
    parser.add_argument("--kinds", nargs="+", choices=ATTACK_KINDS, default=list(ATTACK_KINDS))
    parser.add_argument("--every", type=int, default=1, help="take every N-th image")
    parser.add_argument("--limit", type=int, default=None, help="at most N images per folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sources: list[Path] = []
    for folder in args.live:
        if not folder.is_dir():
            print(f"make_attacks: {folder} is not a folder", file=sys.stderr)
            return 1
        files = image_files(folder)[::max(1, args.every)]
        sources += files[:args.limit] if args.limit else files
    written = write_attacks(sources, args.out, args.kinds, args.seed)
    print(f"wrote {len(written)} attacks of {len(sources)} photos to {args.out} "
          f"({', '.join(args.kinds)}); {SYNTHETIC_NOTE}")
    return 0 if written or not sources else 1


if __name__ == "__main__":
    sys.exit(main())
