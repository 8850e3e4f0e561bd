"""Calibrate the product's match threshold for a stated false-accept rate, without LFW.

Impostor pairs come from UTKFace: any two different images of the 23,707 are, with rare
exceptions (the set has no identity labels, and a few people appear more than once), two
different people. Those rare same-person pairs can only raise the high tail, so the threshold
errs on the safe side. The faces are the product's own aligned crops, embedded with the
product's ONNX model exactly as the kiosk does (optionally mirror-averaged).

    python -m faceguard.training.calibrate --model resources/models/lite_mobilefacenet_96.onnx \
        [--mirror] [--faces 6000] [--write-manifest 1e-4] [--canvases DIR] [--fusion max_mean]

``--canvases`` takes the crops from the teacher-views cache (:mod:`faceguard.training.
teacher_views`: the clean 112 crop of each canvas, area-resized to 96, as the student sees it)
instead of ``prepare``'s crops. ``--fusion max_mean`` calibrates the matcher's mean-template
rule: half of the faces become enrolled "people" with two templates (the photo and an
augmented view of it, :func:`faceguard.training.views.make_view` view 2; UTKFace has no
identity labels, so a second photo of the same person is not available), the other half are
strangers, and the false-accept rate is per (stranger, enrolled person) comparison of the fused
score (best of the two templates and their mean). Two views of one photo are closer than two
photos, so real people's mean templates spread impostor scores a little more than this.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from faceguard.evaluation.metrics import ImpostorScores
from faceguard.paths import train_cache_dir
from faceguard.settings.schema import STRICTNESS_FAR
from faceguard.vision.embedder import Embedder
from faceguard.vision.onnx_model import MANIFEST_NAME, file_sha256

FARS = tuple(sorted(STRICTNESS_FAR.values(), reverse=True))  # one per strictness level
BLOCK = 1024


def impostor_thresholds(vectors: np.ndarray, fars: tuple[float, ...] = FARS) -> dict:
    """Thresholds at each FAR over all distinct pairs of the (unit) vectors."""
    count = len(vectors)
    total_pairs = count * (count - 1) // 2
    scores = ImpostorScores(keep=int(max(fars) * total_pairs) + 16)
    for start in range(0, count, BLOCK):
        block = vectors[start:start + BLOCK] @ vectors[start:].T
        rows = np.arange(block.shape[0])[:, None]
        cols = np.arange(block.shape[1])[None, :]
        scores.add(block[cols > rows])
    return {"pairs": scores.count,
            "thresholds": {f"{far:g}": round(scores.threshold(far), 4) for far in fars}}


def fused_thresholds(enrolled: np.ndarray, strangers: np.ndarray,
                     fars: tuple[float, ...] = FARS) -> dict:
    """Thresholds at each FAR over all (stranger, person) comparisons under ``max_mean``.

    ``enrolled`` is (P, K, D) unit templates per person, ``strangers`` (S, D) unit vectors.
    """
    means = enrolled.sum(axis=1)
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    total = len(strangers) * len(enrolled)
    scores = ImpostorScores(keep=int(max(fars) * total) + 16)
    for start in range(0, len(strangers), BLOCK):
        block = strangers[start:start + BLOCK]
        fused = np.max(np.einsum("pkd,sd->spk", enrolled, block), axis=2)
        scores.add(np.maximum(fused, block @ means.T))
    return {"comparisons": scores.count,
            "thresholds": {f"{far:g}": round(scores.threshold(far), 4) for far in fars}}


def canvas_crops(folder: Path, rows: np.ndarray, view: int = 0) -> np.ndarray:
    """uint8 (n, 96, 96, 3) student crops of view ``view`` of these canvases."""
    from faceguard.training.views import make_view

    canvases = np.load(folder / "canvases.npy", mmap_mode="r")
    return np.stack([make_view(np.asarray(canvases[i]), int(i), view)[1] for i in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--crops", type=Path, default=train_cache_dir() / "student")
    parser.add_argument("--faces", type=int, default=6000)
    parser.add_argument("--mirror", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--margin", type=float, default=0.05)
    parser.add_argument("--write-manifest", type=float, metavar="FAR",
                        help="record the threshold at this FAR (the default strictness) and "
                             "the table at every FAR (the other levels) in the model manifest")
    parser.add_argument("--canvases", type=Path, default=None,
                        help="take the crops from this teacher-views cache instead of --crops")
    parser.add_argument("--fusion", choices=("max", "max_mean"), default="max",
                        help="the matcher's template-fusion rule to calibrate")
    args = parser.parse_args()
    source = args.canvases or args.crops
    found = np.nonzero(np.load(source / "found.npy"))[0]
    rows = np.sort(np.random.default_rng(args.seed).choice(found, args.faces, replace=False))
    embedder = Embedder(args.model, sha256=file_sha256(args.model), mirror=args.mirror)
    if args.canvases is not None:
        vectors = embedder.embed(canvas_crops(args.canvases, rows))
    else:
        vectors = embedder.embed(np.asarray(np.load(source / "crops.npy", mmap_mode="r")[rows]))
    report = {"model": embedder.model_id, "faces": len(rows), "fusion": args.fusion,
              **impostor_thresholds(vectors)}
    if args.fusion == "max_mean":
        if args.canvases is None:
            parser.error("--fusion max_mean needs --canvases (the augmented second template)")
        # a random half (file names start with the age: never split them in sorted order)
        order = np.random.default_rng(args.seed + 1).permutation(len(rows))
        half = len(rows) // 2
        people, others = order[:half], order[half:]
        second = embedder.embed(canvas_crops(args.canvases, rows[people], view=2))
        enrolled = np.stack([vectors[people], second], axis=1)
        enrolled /= np.linalg.norm(enrolled, axis=2, keepdims=True)
        strangers = vectors[others] / np.linalg.norm(vectors[others], axis=1, keepdims=True)
        fused = fused_thresholds(enrolled, strangers)
        report["pair_thresholds"] = report.pop("thresholds")
        report.update({"people": half, "strangers": len(strangers), **fused})
    print(json.dumps(report, indent=1))
    if args.write_manifest:
        manifest_path = args.model.parent / MANIFEST_NAME
        manifest = json.loads(manifest_path.read_text())
        entry = manifest["models"].setdefault(args.model.name, {})
        what = (f"UTKFace impostor pairs ({report['pairs']:,} pairs of {len(rows)} faces)"
                if args.fusion == "max" else
                f"UTKFace stranger-vs-person comparisons under max_mean ("
                f"{report['comparisons']:,}: {report['strangers']} strangers, "
                f"{report['people']} people with 2 templates)")
        entry.update({"threshold": report["thresholds"][f"{args.write_manifest:g}"],
                      "threshold_far": args.write_manifest,
                      "thresholds": report["thresholds"], "margin": args.margin,
                      "mirror": args.mirror, "fusion": args.fusion,
                      "calibration": f"{what}, faceguard.training.calibrate"})
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
