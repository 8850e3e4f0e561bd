"""Calibrate the product's match threshold for a stated false-accept rate, without LFW.

Impostor pairs come from UTKFace: any two different images of the 23,707 are, with rare
exceptions (the set has no identity labels, and a few people appear more than once), two
different people. Those rare same-person pairs can only raise the high tail, so the threshold
errs on the safe side. The faces are the product's own aligned crops, embedded with the
product's ONNX model exactly as the kiosk does (optionally mirror-averaged).

    python -m faceguard.training.calibrate --model resources/models/lite_mobilefacenet_96.onnx \
        [--mirror] [--faces 6000] [--write-manifest 1e-4]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from faceguard.evaluation.metrics import ImpostorScores
from faceguard.paths import train_cache_dir
from faceguard.vision.embedder import Embedder
from faceguard.vision.onnx_model import MANIFEST_NAME, file_sha256

FARS = (1e-3, 1e-4, 1e-5)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--crops", type=Path, default=train_cache_dir() / "student")
    parser.add_argument("--faces", type=int, default=6000)
    parser.add_argument("--mirror", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--margin", type=float, default=0.05)
    parser.add_argument("--write-manifest", type=float, metavar="FAR",
                        help="record the threshold at this FAR in the model manifest")
    args = parser.parse_args()
    crops = np.load(args.crops / "crops.npy", mmap_mode="r")
    found = np.nonzero(np.load(args.crops / "found.npy"))[0]
    rows = np.sort(np.random.default_rng(args.seed).choice(found, args.faces, replace=False))
    embedder = Embedder(args.model, sha256=file_sha256(args.model), mirror=args.mirror)
    vectors = embedder.embed(np.asarray(crops[rows]))
    report = {"model": embedder.model_id, "faces": len(rows), **impostor_thresholds(vectors)}
    print(json.dumps(report, indent=1))
    if args.write_manifest:
        manifest_path = args.model.parent / MANIFEST_NAME
        manifest = json.loads(manifest_path.read_text())
        entry = manifest["models"].setdefault(args.model.name, {})
        entry.update({"threshold": report["thresholds"][f"{args.write_manifest:g}"],
                      "threshold_far": args.write_manifest, "margin": args.margin,
                      "mirror": args.mirror,
                      "calibration": f"UTKFace impostor pairs ({report['pairs']:,} pairs of "
                                     f"{len(rows)} faces), faceguard.training.calibrate"})
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
