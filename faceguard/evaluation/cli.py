"""`faceguard eval lfw`, `eval gallery` and `eval liveness` (registered by faceguard.cli)."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from faceguard.console import CommandError
from faceguard.core.context import AppContext
from faceguard.errors import FaceGuardError
from faceguard.evaluation.cli_support import (
    Reporter,
    eval_engine,
    eval_min_face,
    far_rate,
    positive_int,
)
from faceguard.evaluation.gallery import DEFAULT_SEED
from faceguard.evaluation.gallery_cli import cmd_eval_gallery
from faceguard.evaluation.lfw import evaluate_lfw
from faceguard.evaluation.lfw_pairs import TIMING_IMAGES, LfwSubset, load_subset, sample_images
from faceguard.evaluation.lfw_pipelines import (
    FALLBACK_SAMPLE,
    LFW_PICK,
    SFACE_MODEL_ID,
    TEACHER_MODEL_ID,
    SFaceEmbed,
    TeacherEmbed,
    engine_embed_fn,
    time_engine,
    time_sface,
    time_teacher,
)
from faceguard.evaluation.lfw_report import TEACHER_NAMES, format_report, report_json
from faceguard.evaluation.lfw_scores import VerificationScores
from faceguard.vision.engine import FaceEngine

DEFAULT_DATASET = "../shared/datasets/lfw"


def _sface_scores(args: argparse.Namespace, subset: LfwSubset, reporter: Reporter
                  ) -> VerificationScores:
    """Score SFace (MTCNN, face nearest the centre, 112 alignment) on the same pairs."""
    from faceguard.training.sface import TeacherMissingError

    try:
        embed = SFaceEmbed(min_face=eval_min_face(args))
    except TeacherMissingError as error:
        raise CommandError(f"--teacher sface: {error}") from error
    except ImportError as error:
        raise CommandError(f"--teacher sface needs onnx and onnxruntime: {error}") from error
    scores = evaluate_lfw(args.dataset, embed, model_id=SFACE_MODEL_ID,
                          cache_key=f"{SFACE_MODEL_ID}_minface{embed.min_face}",
                          limit_pairs=args.limit_pairs, calibrate_far=args.calibrate,
                          progress=reporter.progress, note=reporter.note)
    scores.ms_per_face = time_sface(embed, sample_images(subset, min(5, TIMING_IMAGES)))
    return scores


def _teacher_scores(args: argparse.Namespace, subset: LfwSubset, reporter: Reporter
                    ) -> VerificationScores:
    """Score the chosen teacher's pipeline on the same pairs (dlib's by default)."""
    if args.teacher == "sface":
        return _sface_scores(args, subset, reporter)
    try:
        from faceguard.training.dlib_teacher import DlibTeacher

        teacher = DlibTeacher()
    except ImportError as error:
        raise CommandError(f"--teacher needs dlib (pip install dlib-bin): {error}") from error
    except FileNotFoundError as error:
        raise CommandError(f"--teacher: {error}") from error
    embed = TeacherEmbed(teacher, lambda: sample_images(subset, FALLBACK_SAMPLE))
    scores = evaluate_lfw(args.dataset, embed, model_id=TEACHER_MODEL_ID,
                          limit_pairs=args.limit_pairs, calibrate_far=args.calibrate,
                          progress=reporter.progress, note=reporter.note)
    scores.ms_per_face = time_teacher(teacher, sample_images(subset, min(5, TIMING_IMAGES)))
    return scores


def cmd_eval_lfw(ctx: AppContext, args: argparse.Namespace) -> int:
    """10-fold accuracy and TAR at FAR on LFW, optionally next to dlib's pipeline."""
    from faceguard.evaluation.roc_plot import RocSeries, check_target, draw_roc

    if args.roc:
        check_target(args.roc)
    subset = load_subset(args.dataset, args.limit_pairs)
    min_face = eval_min_face(args)
    engine = eval_engine(ctx, args.mirror)
    reporter = Reporter()
    reporter.note(f"face selection: {LFW_PICK} (the face nearest the image centre, LFW's "
                  "convention; whole faces before faces cut by the border)")
    ours = evaluate_lfw(args.dataset, engine_embed_fn(engine, min_face, LFW_PICK),
                        model_id=engine.model_id,
                        cache_key=f"{engine.model_id}_minface{min_face}_{LFW_PICK}",
                        limit_pairs=args.limit_pairs, calibrate_far=args.calibrate,
                        progress=reporter.progress, note=reporter.note)
    ours.ms_per_face = time_engine(engine, sample_images(subset, TIMING_IMAGES), min_face)
    teacher = _teacher_scores(args, subset, reporter) if args.teacher else None
    if args.roc:
        teacher_name = TEACHER_NAMES[args.teacher or "dlib"]
        series = [RocSeries(c.model_id if c is ours else teacher_name, c.roc.far,
                            c.roc.tar, dict(c.tar_at_far))
                  for c in (ours, teacher) if c is not None]
        title = f"LFW, {len(subset.images)} images, all pairs"
        reporter.note(f"wrote {draw_roc(args.roc, series, title)}")
    folds = len(set(subset.folds.tolist()))
    if args.json:
        info: dict[str, Any] = {"dataset": str(subset.root), "pairs_total": subset.total_pairs,
                                "limit_pairs": args.limit_pairs, "folds": folds,
                                "min_face": min_face, "mirror": bool(args.mirror)}
        if args.roc:
            info["roc"] = str(args.roc)
        print(json.dumps(report_json(info, ours, teacher), indent=1))
    else:
        header = (f"LFW {subset.root}: {len(subset.pairs)} pairs in {folds} folds, "
                  f"{len(subset.images)} images; MTCNN min face {min_face} px"
                  + (", mirror averaging" if args.mirror else ""))
        print(format_report(header, ours, teacher, TEACHER_NAMES[args.teacher or "dlib"]))
    return 0


def _liveness_scores(engine: FaceEngine, checker: Any, folder: Path, min_face: int,
                     reporter: Reporter, label: str, every: int = 1
                     ) -> tuple[list[float | None], int, float]:
    """The fused live probability of the largest face of each image (None: unsure), the
    number of images without a face or unreadable (left out), and ms per scored face."""
    from faceguard.evaluation.attacks import image_files
    from faceguard.vision.image_io import load_image

    files = image_files(folder)[::every]
    if not files:
        raise CommandError(f"{folder}: no images (jpg, png, bmp, webp) in this folder")
    scores: list[float | None] = []
    left_out = 0
    spent = 0.0
    for done, path in enumerate(files, 1):
        try:
            image = load_image(path)
            faces = engine.detect(image, min_face)
        except FaceGuardError as error:
            reporter.note(f"skipped {path}: {error}")
            faces, image = [], None
        if not faces or image is None:
            left_out += 1
        else:
            tick = time.perf_counter()
            scores.append(checker.score(image, faces[0].box))
            spent += time.perf_counter() - tick
        reporter.progress(label, done, len(files))
    return scores, left_out, 1000.0 * spent / max(1, len(scores))


def cmd_eval_liveness(ctx: AppContext, args: argparse.Namespace) -> int:
    """APCER, BPCER and ACER of the liveness networks at the threshold in force; DET PNG."""
    from faceguard.evaluation.attacks import SYNTHETIC_NOTE
    from faceguard.evaluation.liveness import det_curve, draw_det, pad_rates
    from faceguard.evaluation.roc_plot import check_target
    from faceguard.vision.liveness import LivenessChecker

    for folder in (args.live, args.attack):
        if not Path(folder).is_dir():
            raise CommandError(f"{folder} is not a folder")
    if args.det:
        check_target(args.det)
    threshold = ctx.settings.liveness_threshold if args.threshold is None else args.threshold
    min_face = eval_min_face(args)
    checker = LivenessChecker()
    reporter = Reporter()
    live, live_out, live_ms = _liveness_scores(ctx.engine, checker, Path(args.live), min_face,
                                               reporter, "live", args.live_every)
    attack, attack_out, attack_ms = _liveness_scores(ctx.engine, checker, Path(args.attack),
                                                     min_face, reporter, "attack")
    if not live or not attack:
        raise CommandError("no face was found in the live or in the attack images")
    rates = pad_rates(live, attack, threshold)
    curve = det_curve(live, attack)
    eer, eer_threshold = curve.equal_error()
    if args.det:
        title = f"Liveness DET: {len(live)} live, {len(attack)} attack images"
        reporter.note(f"wrote {draw_det(args.det, [('MiniFASNet fused', curve)], title, [rates])}")
    ms = (live_ms * len(live) + attack_ms * len(attack)) / (len(live) + len(attack))
    info = {**rates.as_json(), "live_unsure": rates.live_unsure,
            "attack_unsure": rates.attack_unsure, "live_no_face": live_out,
            "attack_no_face": attack_out, "eer": eer, "eer_threshold": eer_threshold,
            "ms_per_face": round(ms, 2), "model_id": checker.model_id,
            "note": f"figures describe the images given; {SYNTHETIC_NOTE}"}
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        print(f"liveness at threshold {threshold:.3f} (min face {min_face} px)\n"
              f"  APCER {100 * rates.apcer:6.2f}%  attacks accepted as live "
              f"({round(rates.apcer * rates.attack)} of {rates.attack}; "
              f"{rates.attack_unsure} unsure, {attack_out} without a face left out)\n"
              f"  BPCER {100 * rates.bpcer:6.2f}%  live faces refused "
              f"({round(rates.bpcer * rates.live)} of {rates.live}; {rates.live_unsure} unsure "
              f"count as refused, {live_out} without a face left out)\n"
              f"  ACER  {100 * rates.acer:6.2f}%   EER {100 * eer:.2f}% at {eer_threshold:.3f}; "
              f"{ms:.1f} ms per face (both networks)\n"
              f"note: these figures describe the images given; {SYNTHETIC_NOTE}")
    return 0


def _unit(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``eval lfw`` and ``eval gallery`` to the faceguard command line."""
    parser = subparsers.add_parser(
        "eval", help="measure accuracy on LFW (evaluation only; never train on it)")
    actions = parser.add_subparsers(dest="eval_action", required=True, metavar="ACTION")

    def common(action: argparse.ArgumentParser) -> None:
        action.add_argument("--dataset", default=DEFAULT_DATASET,
                            help=f"LFW folder with pairs.txt and images/ (default "
                            f"{DEFAULT_DATASET})")
        action.add_argument("--json", action="store_true", help="print one JSON object")
        action.add_argument("--mirror", action="store_true",
                            help="average each face's embedding with its mirror image's")
        action.add_argument("--limit-pairs", type=positive_int, metavar="N",
                            help="only N pairs spread over the folds (quick runs, tests)")

    lfw = actions.add_parser("lfw", help="10-fold accuracy, TAR at FAR 1e-3/1e-4, ROC")
    common(lfw)
    lfw.add_argument("--teacher", nargs="?", const="dlib", choices=sorted(TEACHER_NAMES),
                     default=None,
                     help="also score a teacher's pipeline on the same pairs: dlib (the "
                     "default) or sface (needs tools/fetch_sface.py; face nearest the "
                     "centre); slow the first time")
    lfw.add_argument("--roc", metavar="FILE.png", help="draw the ROC curve(s) into FILE.png")
    lfw.add_argument("--calibrate", type=far_rate, metavar="FAR",
                     help="print the threshold at this FAR on LFW impostor pairs (for "
                     "reporting only; calibrate the shipped threshold on a non-LFW set)")
    lfw.set_defaults(func=cmd_eval_lfw)

    gallery = actions.add_parser("gallery", help="kiosk protocol: rank-1 and stranger "
                                 "false accepts at the operating point")
    common(gallery)
    gallery.add_argument("--threshold", type=float, help="override the operating threshold")
    gallery.add_argument("--margin", type=float, help="override the operating margin")
    gallery.add_argument("--seed", type=int, default=DEFAULT_SEED,
                         help="seed choosing who is enrolled and with which photos")
    gallery.add_argument("--rules", action="store_true",
                         help="also compare the open-set rules (best template, + mean "
                         "template, + cohort normalisation) at thresholds set on UTKFace")
    gallery.add_argument("--levels", action="store_true",
                         help="also score every calibrated strictness level (standard, strict, "
                         "very-strict) on the same split")
    gallery.add_argument("--visits", type=positive_int, metavar="K",
                         help="also decide by visits: K photos of a person fused into one "
                         "vector first, as the kiosk fuses the frames of a visit")
    gallery.add_argument("--utkface", default="../shared/datasets/utkface",
                         help="UTKFace folder for --rules (its threshold, never LFW)")
    gallery.add_argument("--utkface-faces", type=positive_int, default=3000, metavar="N",
                         help="UTKFace images embedded for --rules (first N by name)")
    gallery.set_defaults(func=cmd_eval_gallery)

    liveness = actions.add_parser(
        "liveness", help="APCER, BPCER, ACER of passive liveness on live and attack folders")
    liveness.add_argument("--live", required=True, metavar="DIR",
                          help="folder of live (bona fide) face images, searched recursively")
    liveness.add_argument("--attack", required=True, metavar="DIR",
                          help="folder of attack images (e.g. from tools/make_attacks.py)")
    liveness.add_argument("--live-every", type=positive_int, default=1, metavar="N",
                          help="only every N-th live image (sorted paths; an LFW subset)")
    liveness.add_argument("--json", action="store_true", help="print one JSON object")
    liveness.add_argument("--det", metavar="FILE.png", help="draw the DET curve into FILE.png")
    liveness.add_argument("--threshold", type=_unit,
                          help="override the liveness threshold in force (settings)")
    liveness.set_defaults(func=cmd_eval_liveness)
