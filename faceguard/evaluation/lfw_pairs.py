"""The LFW subset to score: pairs.txt read and checked against the images on disk, an even
selection of pairs (``--limit-pairs``) and a sample of the images for timing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceguard.errors import FaceGuardError
from faceguard.evaluation.metrics import Pair, PairsFormatError, read_pairs
from faceguard.vision.image_io import load_image

TIMING_IMAGES = 10


class DatasetError(FaceGuardError):
    """The LFW folder is missing or incomplete."""



@dataclass(frozen=True)
class LfwSubset:
    """The pairs to score and the unique images they name."""

    root: Path
    pairs: list[Pair]
    images: list[str]
    """Unique image paths relative to ``root``, sorted."""
    identities: list[str]
    """Person name of each image."""
    pair_rows: np.ndarray
    """(P, 2) indices into ``images``."""
    labels: np.ndarray
    folds: np.ndarray
    total_pairs: int


def select_pairs(pairs: Sequence[Pair], limit: int | None) -> list[Pair]:
    """All pairs, or ``limit`` of them spread round-robin over every (fold, label) group."""
    if limit is None or limit >= len(pairs):
        return list(pairs)
    groups: dict[tuple[int, bool], list[Pair]] = {}
    for pair in pairs:
        groups.setdefault((pair.fold, not pair.same), []).append(pair)
    ordered = [groups[key] for key in sorted(groups)]
    chosen: list[Pair] = []
    depth = 0
    while len(chosen) < limit:
        for group in ordered:
            if depth < len(group) and len(chosen) < limit:
                chosen.append(group[depth])
        depth += 1
    return chosen


def load_subset(dataset_dir: str | os.PathLike[str], limit_pairs: int | None = None
                ) -> LfwSubset:
    """Read pairs.txt and check every image it names is there; DatasetError otherwise."""
    root = Path(dataset_dir)
    pairs_file = root / "pairs.txt"
    if not root.is_dir():
        raise DatasetError(f"LFW dataset not found: {root} is not a folder (use --dataset)")
    if not pairs_file.is_file():
        raise DatasetError(f"LFW dataset incomplete: {pairs_file} is missing")
    try:
        all_pairs = read_pairs(pairs_file)
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"cannot read {pairs_file}: {error}") from error
    except PairsFormatError as error:
        raise DatasetError(f"{pairs_file}: {error}") from error
    if limit_pairs is not None and limit_pairs < 3:
        raise DatasetError("--limit-pairs must be at least 3 (pairs in two folds are needed)")
    pairs = select_pairs(all_pairs, limit_pairs)
    people = {p.image_a: p.name_a for p in pairs} | {p.image_b: p.name_b for p in pairs}
    images = sorted(people)
    missing = [name for name in images if not (root / name).is_file()]
    if missing:
        raise DatasetError(f"LFW dataset incomplete: {len(missing)} images named by "
                           f"pairs.txt are missing (first: {root / missing[0]})")
    index = {name: i for i, name in enumerate(images)}
    rows = np.array([[index[p.image_a], index[p.image_b]] for p in pairs], dtype=np.int64)
    return LfwSubset(root, pairs, images, [people[name] for name in images], rows,
                     np.array([p.same for p in pairs], dtype=bool),
                     np.array([p.fold for p in pairs], dtype=np.int64), len(all_pairs))


def sample_images(subset: LfwSubset, count: int = TIMING_IMAGES) -> list[np.ndarray]:
    """``count`` evenly spaced images of the subset, loaded as RGB."""
    picks = sorted({int(i) for i in np.linspace(0, len(subset.images) - 1,
                                                min(count, len(subset.images)))})
    return [load_image(subset.root / subset.images[i]) for i in picks]
