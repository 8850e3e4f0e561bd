"""``faceguard identify``, ``verify`` and ``embed``: what the engine sees in image files.

``identify`` names the faces of each image (one JSON line per image with ``--json``),
``verify`` compares the largest faces of two images at the operating point, ``embed`` writes
the embeddings of many images to one ``.npy`` file (a row of NaN where no face was found).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from faceguard.console import EXIT_OK, EXIT_PARTIAL, CommandError, Progress
from faceguard.console import print_error as _err
from faceguard.core.context import AppContext
from faceguard.core.recognition import Recogniser
from faceguard.errors import FaceGuardError
from faceguard.vision.image_io import load_image
from faceguard.vision.selection import PICKS, Pick
from faceguard.wording import one_line


def cmd_identify(ctx: AppContext, args: argparse.Namespace) -> int:
    """Name the faces in each image; exit 3 when an image could not be read."""
    from faceguard.vision.liveness import checker_for_mode

    liveness = checker_for_mode(ctx.settings.liveness_mode)  # enforce: a missing model fails
    live_threshold = ctx.settings.liveness_threshold if liveness is not None else None
    recogniser = Recogniser(ctx.engine, ctx.matcher, ctx.library, liveness=liveness)
    failures = 0
    for name in args.images:
        try:
            faces = recogniser.recognise(load_image(name), pick=args.pick)
        except FaceGuardError as error:
            failures += 1
            _err(str(error))
            if args.json:
                print(json.dumps({"image": name, "faces": [], "error": str(error),
                                  "liveness_threshold": live_threshold}), flush=True)
            continue
        if args.json:
            print(json.dumps({"image": name, "faces": [f.to_json() for f in faces],
                              "liveness_threshold": live_threshold}), flush=True)
        elif not faces:
            print(f"{one_line(name)}: no face")
        else:
            parts = [f"{f.person or 'unknown'} ({f.match.similarity:.3f})" for f in faces]
            print(f"{one_line(name)}: " + ", ".join(parts))
    return EXIT_PARTIAL if failures else EXIT_OK


def _largest_embedding(ctx: AppContext, name: str, pick: Pick = "largest") -> np.ndarray:
    observation = ctx.engine.embed_largest(load_image(name), pick=pick)
    if observation is None or observation.embedding is None:
        raise CommandError(f"{name}: no face found")
    return observation.embedding


def cmd_verify(ctx: AppContext, args: argparse.Namespace) -> int:
    """Same person or not, at the operating point in force."""
    first = _largest_embedding(ctx, args.image_a, args.pick)
    second = _largest_embedding(ctx, args.image_b, args.pick)
    similarity = float(np.dot(first, second))
    threshold = ctx.operating_point.threshold
    same = similarity >= threshold
    if args.json:
        print(json.dumps({"similarity": round(similarity, 4), "same": same,
                          "threshold": threshold}))
    else:
        verdict = "same person" if same else "different people"
        print(f"similarity {similarity:.3f} (threshold {threshold:.3f}): {verdict}")
    return EXIT_OK


def cmd_embed(ctx: AppContext, args: argparse.Namespace) -> int:
    """Embeddings of the images to a .npy file; exit 3 when some had no face."""
    names = list(args.images)
    if args.list:
        try:
            lines = Path(args.list).read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise CommandError(f"cannot read the list {args.list}: {error.strerror}") from error
        names += [line.strip() for line in lines if line.strip()]
    if not names:
        raise CommandError("no images given (name them, or use --list FILE)")
    out = Path(args.out)
    if out.suffix != ".npy":
        raise CommandError("--out must name a .npy file")
    if not out.parent.exists():
        raise CommandError(f"folder {out.parent} does not exist")
    matrix = np.full((len(names), ctx.engine.embedder.dimension), np.nan, np.float32)
    progress = Progress(len(names), "embedding") if len(names) > 20 else None
    missing = 0
    for row, name in enumerate(names):
        try:
            observation = ctx.engine.embed_largest(load_image(name), pick=args.pick)
        except FaceGuardError as error:
            observation = None
            _err(f"row {row}: {error}")
        else:
            if observation is None:
                _err(f"row {row}: {name}: no face found")
        if observation is not None and observation.embedding is not None:
            matrix[row] = observation.embedding
        else:
            missing += 1
        if progress:
            progress(row + 1)
    temporary = out.with_name(out.name + ".partial.npy")
    np.save(temporary, matrix)
    temporary.replace(out)
    print(f"wrote {out}: {len(names)} x {matrix.shape[1]}, {missing} without a face")
    return EXIT_PARTIAL if missing else EXIT_OK



def _add_pick(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pick", choices=PICKS, default="largest",
                        help="which face counts: the largest whole face (default) or the one "
                        "nearest the image centre (LFW's convention); faces cut off by the "
                        "image border come last either way")


def register(commands: Any) -> None:
    """Add ``identify``, ``verify`` and ``embed`` to the main parser's subcommands."""
    p = commands.add_parser("identify", help="identify the faces in images")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="one JSON object per line per image")
    _add_pick(p)
    p.set_defaults(func=cmd_identify)

    p = commands.add_parser("verify", help="are the largest faces of two images one person?")
    p.add_argument("image_a")
    p.add_argument("image_b")
    p.add_argument("--json", action="store_true")
    _add_pick(p)
    p.set_defaults(func=cmd_verify)

    p = commands.add_parser("embed", help="write the embeddings of images to a .npy file")
    p.add_argument("images", nargs="*", metavar="IMAGE")
    p.add_argument("--list", help="file with one image path a line")
    p.add_argument("--out", required=True, help="output .npy file")
    _add_pick(p)
    p.set_defaults(func=cmd_embed)
