"""What the `faceguard eval` commands share: progress on stderr, argument types, the engine."""

from __future__ import annotations

import argparse
import math
import sys

from faceguard.console import Progress
from faceguard.core.context import AppContext, embedder_location
from faceguard.evaluation.lfw_pipelines import LFW_MIN_FACE
from faceguard.vision.engine import FaceEngine


class Reporter:
    """Progress bars and notes on stderr."""

    def __init__(self) -> None:
        self.bars: dict[str, Progress] = {}

    def progress(self, label: str, done: int, total: int) -> None:
        """Advance the bar of this label."""
        self.bars.setdefault(label, Progress(total, label))(done, total)

    @staticmethod
    def note(message: str) -> None:
        """One line of information."""
        print(f"faceguard: {message}", file=sys.stderr, flush=True)


def far_rate(text: str) -> float:
    """argparse type: a false-accept rate in (0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise argparse.ArgumentTypeError(f"the FAR must be between 0 and 1, got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def eval_min_face(args: argparse.Namespace) -> int:
    """The global --min-face when given, else 40 px (LFW faces are ~100 px)."""
    return int(getattr(args, "min_face", None) or LFW_MIN_FACE)


def eval_engine(ctx: AppContext, mirror: bool) -> FaceEngine:
    """The configured pipeline, with a mirror-averaging embedder when asked."""
    if not mirror:
        return ctx.engine
    path, sha = embedder_location(ctx.settings)
    return FaceEngine.load(min_face=ctx.min_face, embedder_path=path, embedder_sha256=sha,
                           mirror=True)
