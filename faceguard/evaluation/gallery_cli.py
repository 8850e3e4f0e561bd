"""`faceguard eval gallery`: the kiosk protocol on LFW at the operating point, and on request
each open-set rule (``--rules``), each calibrated strictness level (``--levels``) and decisions
by visits of several fused photos (``--visits K``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from faceguard.console import CommandError
from faceguard.core.context import AppContext
from faceguard.errors import FaceGuardError
from faceguard.evaluation.cli_support import Reporter, eval_engine, eval_min_face
from faceguard.evaluation.gallery import evaluate_gallery, format_levels_table, gallery_rules
from faceguard.evaluation.gallery_visits import evaluate_visits
from faceguard.evaluation.lfw_embeddings import Embeddings, embed_subset
from faceguard.evaluation.lfw_pairs import LfwSubset, load_subset
from faceguard.evaluation.lfw_pipelines import LFW_PICK, engine_embed_fn
from faceguard.evaluation.open_set import (
    EQUAL_STRANGERS,
    RuleRow,
    format_rules_table,
    utkface_site_threshold,
    utkface_vectors,
)
from faceguard.settings.schema import STRICTNESS_FAR
from faceguard.vision.engine import FaceEngine


def cmd_eval_gallery(ctx: AppContext, args: argparse.Namespace) -> int:
    """Enrol 2 photos of half the qualifying LFW people; identify and reject strangers."""
    min_face = eval_min_face(args)
    engine = eval_engine(ctx, args.mirror)
    reporter = Reporter()
    point = ctx.operating_point
    threshold = point.threshold if args.threshold is None else args.threshold
    margin = point.margin if args.margin is None else args.margin
    subset = load_subset(args.dataset, args.limit_pairs)
    embeddings = embed_subset(subset, engine_embed_fn(engine, min_face, LFW_PICK),
                              model_id=engine.model_id,
                              cache_key=f"{engine.model_id}_minface{min_face}_{LFW_PICK}",
                              progress=reporter.progress, note=reporter.note)

    def visits_at(level_threshold: float) -> dict[str, Any]:
        return evaluate_visits(subset.identities, embeddings.vectors, embeddings.has_face,
                               threshold=level_threshold, margin=margin,
                               photos_per_visit=args.visits, seed=args.seed,
                               fusion=ctx.fusion).to_json()

    def at(level_threshold: float) -> dict[str, Any]:
        """The protocol at one threshold, per photo and (``--visits``) per visit."""
        report = evaluate_gallery(subset.identities, embeddings.vectors, embeddings.has_face,
                                  threshold=level_threshold, margin=margin, seed=args.seed,
                                  fusion=ctx.fusion).to_json()
        return {**report, "visits": visits_at(level_threshold)} if args.visits else report

    report = evaluate_gallery(subset.identities, embeddings.vectors, embeddings.has_face,
                              threshold=threshold, margin=margin, seed=args.seed,
                              fusion=ctx.fusion)
    extra: dict[str, Any] = {"visits": visits_at(threshold)} if args.visits else {}
    if args.levels:
        extra["levels"] = [{"level": level, "far": STRICTNESS_FAR[level], **at(value)}
                           for level, value in ctx.calibrated_thresholds().items()]
    if args.rules:
        extra["rules"] = _rules_table(args, engine, subset, embeddings, threshold, margin,
                                      min_face, reporter)
    overridden = args.threshold is not None or args.margin is not None
    source = "command line" if overridden else point.source
    if args.json:
        print(json.dumps({"dataset": args.dataset, "model_id": engine.model_id,
                          "operating_point_source": source, "fusion": ctx.fusion,
                          **report.to_json(), **extra}, indent=1))
        return 0
    print(report.format(f"LFW gallery protocol, {engine.model_id} (operating point: "
                        f"{source}; template fusion {ctx.fusion})"))
    if "visits" in extra:
        print(_format_visits(extra["visits"]))
    if "rules" in extra:
        print(format_rules_table([RuleRow(**row) for row in extra["rules"]["rows"]],
                                 extra["rules"]["note"]))
    if "levels" in extra:
        print(format_levels_table(extra["levels"], margin))
    return 0


def _format_visits(visits: dict[str, Any]) -> str:
    def pct(rate: float | None) -> str:
        return "n/a" if rate is None else f"{100 * rate:.2f}%"

    return (f"by visits of {visits['photos_per_visit']} fused photos: "
            f"{pct(visits['accept_rate'])} of {visits['enrolled_visits']} enrolled visits named, "
            f"{pct(visits['misidentification_rate'])} as someone else, "
            f"{pct(visits['stranger_false_accept_rate'])} of {visits['stranger_visits']} "
            "stranger visits accepted")


def _rules_table(args: argparse.Namespace, engine: FaceEngine, subset: LfwSubset,
                 embeddings: Embeddings, threshold: float, margin: float, min_face: int,
                 reporter: Reporter) -> dict[str, Any]:
    """Each open-set rule on the gallery split, the cohort rule's threshold set on UTKFace."""
    try:
        utk = utkface_vectors(Path(args.utkface), engine_embed_fn(engine, min_face, "largest"),
                              model_id=engine.model_id, count=args.utkface_faces,
                              progress=reporter.progress)
        site = utkface_site_threshold(utk, threshold, margin)
    except (FaceGuardError, ValueError) as error:
        raise CommandError(f"--rules: {error}") from error
    thresholds = {"max": threshold, "max_mean": threshold, "cohort": site.cohort_threshold}
    rows = gallery_rules(subset.identities, embeddings.vectors, embeddings.has_face,
                         thresholds=thresholds, margin=margin, seed=args.seed)
    note = (f"threshold {threshold:.4f} (max, max_mean) accepts {100 * site.stranger_rate:.2f}% "
            f"of {site.strangers} UTKFace strangers on a simulated {site.people}-person UTKFace "
            f"site; the cohort z threshold {site.cohort_threshold:.3f} accepts as many there. "
            f"Margin {margin:.3f} over the runner-up in every rule. {EQUAL_STRANGERS}: "
            "max_mean at the threshold where it accepts no more LFW strangers than max "
            "(read off LFW: for reporting only).")
    return {"rows": [vars(row) for row in rows], "note": note,
            "utkface_site": vars(site)}
