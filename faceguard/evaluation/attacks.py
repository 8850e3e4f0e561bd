"""Synthetic presentation attacks for a folder of live photos (``tools/make_attacks.py``).

The images themselves are made by :mod:`faceguard.vision.attacks` (re-photographed prints:
resampling, halftone, paper, colour cast, blur; screen replays: gamma, moire, bezel,
reflection). They are synthetic, **no substitute for a certified ISO/IEC 30107-3 test**;
nothing measured with them claims conformance.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2

from faceguard.vision.attacks import (
    ATTACK_KINDS,
    SYNTHETIC_NOTE,
    make_attack,
    print_attack,
    screen_attack,
)

__all__ = ["ATTACK_KINDS", "SYNTHETIC_NOTE", "image_files", "make_attack", "print_attack",
           "screen_attack", "write_attacks"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _seed_for(name: str, seed: int) -> int:
    """A stable per-image seed (independent of Python's hash randomisation)."""
    return (seed * 1_000_003 + sum((i + 1) * ord(c) for i, c in enumerate(name))) % 2**32


def image_files(folder: str | Path) -> list[Path]:
    """Image files under a folder (recursive), sorted."""
    root = Path(folder)
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and p.suffix.lower() in IMAGE_SUFFIXES)


def write_attacks(sources: Iterable[Path], out: str | Path, kinds: Iterable[str] = ATTACK_KINDS,
                  seed: int = 0) -> list[Path]:
    """Write ``<out>/<kind>/<stem>_<kind>.png`` for each photo and kind; returns the files.

    Photos that cannot be read are skipped (the caller names them).
    """
    from faceguard.errors import FaceGuardError
    from faceguard.vision.image_io import load_image

    target = Path(out)
    written: list[Path] = []
    for source in sources:
        try:
            photo = load_image(source)
        except FaceGuardError:
            continue
        for kind in kinds:
            folder = target / kind
            folder.mkdir(parents=True, exist_ok=True)
            attack = make_attack(photo, kind, _seed_for(f"{source.parent.name}/{source.name}",
                                                        seed))
            path = folder / f"{source.parent.name}_{source.stem}_{kind}.png"
            cv2.imwrite(str(path), cv2.cvtColor(attack, cv2.COLOR_RGB2BGR))
            written.append(path)
    return written
