"""LFW verification of the whole pipeline (detect -> align -> embed), optionally next to dlib's.

Scores: the standard 10-fold accuracy on the pairs of pairs.txt, and TAR at FAR 1e-3 / 1e-4
over ALL pairs among the images those pairs name (every same-person pair is genuine, every
cross-identity pair an impostor: about 29.6 M for the 7,701 images). An image without a face
gives similarity -1 to every pair it is in (a genuine pair with it is a failure).
Embeddings are cached per model under ``train_cache_dir()/eval`` so a re-run is instant.
LFW is for evaluation only: never train or calibrate the shipped threshold on it.

:func:`evaluate_lfw` runs it; the parts: ``lfw_pairs`` (the subset of pairs.txt),
``lfw_embeddings`` (embedding the images, the cache), ``lfw_scores`` (folds, TAR),
``lfw_pipelines`` (ours, dlib's and SFace's as embed functions, their timing) and
``lfw_report`` (the table and the JSON); the command is ``faceguard eval lfw``
(:mod:`faceguard.evaluation.cli`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from faceguard.evaluation.lfw_embeddings import (
    EmbedFn,
    NoteFn,
    ProgressFn,
    embed_subset,
    no_note,
    no_progress,
)
from faceguard.evaluation.lfw_pairs import load_subset
from faceguard.evaluation.lfw_scores import REPORT_FARS, VerificationScores, score_subset


def evaluate_lfw(dataset_dir: str | os.PathLike[str], embed_image: EmbedFn, *, model_id: str,
                 cache_key: str | None = None, limit_pairs: int | None = None,
                 fars: Sequence[float] = REPORT_FARS, calibrate_far: float | None = None,
                 cache_dir: Path | None = None, progress: ProgressFn = no_progress,
                 note: NoteFn = no_note) -> VerificationScores:
    """Embed the LFW pair images (cached per ``cache_key``, default ``model_id``) and score."""
    subset = load_subset(dataset_dir, limit_pairs)
    embeddings = embed_subset(subset, embed_image, model_id=model_id, cache_key=cache_key,
                              cache_dir=cache_dir, progress=progress, note=note)
    note(f"{model_id}: scoring {len(subset.pairs)} pairs and all pairs of "
         f"{len(subset.images)} images")
    return score_subset(subset, embeddings, fars, calibrate_far)
