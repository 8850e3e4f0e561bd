"""Join the student crops and the teacher vectors into one compact training bundle.

The bundle is the data directory that :mod:`faceguard.training.distill` reads, small enough
(< 64 MiB) to travel to a lent GPU machine: crops as WebP bytes (``crops_jpg.npz``; OpenCV
decodes WebP and JPEG alike), teacher vectors as float16, and ``valid.npy`` marking faces
that both our MTCNN and the teacher could use. Works on a partly finished teacher cache
(only the finished shards are used).

    python -m faceguard.training.bundle --out DIR [--quality 88]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from faceguard.paths import train_cache_dir
from faceguard.training.packing import pack_crops_jpeg


def load_teacher(teacher_dir: Path) -> dict[str, np.ndarray]:
    """Teacher vectors by file name from the finished shards."""
    names, vectors, mirrored, ok = [], [], [], []
    for shard in sorted((teacher_dir / "shards").glob("shard_*.npz")):
        with np.load(shard) as part:
            names += [str(n) for n in part["names"]]
            vectors.append(part["vectors"])
            mirrored.append(part["mirrored"])
            ok.append(part["ok"])
    if not names:
        raise SystemExit(f"no finished teacher shards in {teacher_dir}")
    return {"names": np.array(names), "vectors": np.concatenate(vectors),
            "mirrored": np.concatenate(mirrored), "ok": np.concatenate(ok)}


def build_bundle(student_dir: Path, teacher_dir: Path, out: Path, quality: int) -> dict:
    """Write the bundle; returns a summary."""
    student_names = (student_dir / "names.txt").read_text().splitlines()
    crops = np.load(student_dir / "crops.npy", mmap_mode="r")
    found = np.load(student_dir / "found.npy")
    teacher = load_teacher(teacher_dir)
    row_of = {name: row for row, name in enumerate(student_names)}
    rows = np.array([row_of[name] for name in teacher["names"]])
    valid = found[rows] & teacher["ok"]
    out.mkdir(parents=True, exist_ok=True)
    data, offsets = pack_crops_jpeg(np.asarray(crops[rows]), quality, ext=".webp")
    np.savez(out / "crops_jpg.npz", data=data, offsets=offsets)
    np.save(out / "targets.npy", teacher["vectors"].astype(np.float16))
    np.save(out / "targets_mirrored.npy", teacher["mirrored"].astype(np.float16))
    np.save(out / "valid.npy", valid)
    (out / "names.txt").write_text("\n".join(teacher["names"]) + "\n")
    size = sum(p.stat().st_size for p in out.iterdir())
    summary = {"faces": len(rows), "valid": int(valid.sum()), "webp_quality": quality,
               "bytes": size, "mib": round(size / 2**20, 1)}
    (out / "bundle.json").write_text(json.dumps(summary, indent=1))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cache = train_cache_dir()
    parser.add_argument("--student", type=Path, default=cache / "student")
    parser.add_argument("--teacher", type=Path, default=cache / "teacher")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quality", type=int, default=88)
    args = parser.parse_args()
    print(json.dumps(build_bundle(args.student, args.teacher, args.out, args.quality)))


if __name__ == "__main__":
    main()
