"""The LFW report: the ``--json`` object and the human-readable table (ours next to a
teacher's pipeline, with the speed ratios).
"""

from __future__ import annotations

from typing import Any

from faceguard.evaluation.lfw_pipelines import TEACHER_MODEL_ID
from faceguard.evaluation.lfw_scores import CALIBRATION_NOTE, VerificationScores
from faceguard.evaluation.metrics import far_key

TEACHER_NAMES = {"dlib": "dlib ResNet (teacher)", "sface": "SFace (teacher)"}


def speed_ratios(ours: VerificationScores, teacher: VerificationScores
                 ) -> dict[str, float | None]:
    """Teacher time / our time, per stage (how many times faster ours is)."""
    ratios: dict[str, float | None] = {}
    for stage in ("embedder", "detector", "pipeline"):
        a, b = ours.ms_per_face.get(stage), teacher.ms_per_face.get(stage)
        ratios[stage] = round(b / a, 2) if a and b else None
    return ratios


def report_json(subset_info: dict[str, Any], ours: VerificationScores,
                teacher: VerificationScores | None = None) -> dict[str, Any]:
    """The ``--json`` object: our scores at the top level, the teacher's under "teacher"."""
    report = {**subset_info, **ours.to_json()}
    if teacher is not None:
        report["teacher"] = teacher.to_json()
        report["speed_ratio_teacher_over_ours"] = speed_ratios(ours, teacher)
    return report


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} ms"


def format_report(header: str, ours: VerificationScores,
                  teacher: VerificationScores | None = None,
                  teacher_name: str = TEACHER_NAMES["dlib"]) -> str:
    """A human-readable table, one column per embedder."""
    columns = [ours] + ([teacher] if teacher is not None else [])
    names = [ours.model_id] + ([teacher_name] if teacher is not None else [])
    rows: list[tuple[str, list[str]]] = [
        (f"{len(ours.folds.accuracies)}-fold accuracy",
         [f"{100 * c.folds.mean:.2f}% +- {100 * c.folds.std:.2f}" for c in columns])]
    for far in ours.tar_at_far:
        rows.append((f"TAR at FAR {far_key(far)}",
                     [f"{100 * c.tar_at_far[far]:.2f}% (thr {c.threshold_at_far[far]:.4f})"
                      for c in columns]))
    if ours.calibration is not None:
        rows.append((f"threshold at FAR {far_key(ours.calibration[0])} *",
                     [f"{c.calibration[1]:.4f}" if c.calibration else "n/a" for c in columns]))
    rows += [
        ("images without a face", [f"{c.images_without_face} of {c.images}"
                                   + (f" ({c.images_fallback} fallback box)"
                                      if c.images_fallback else "") for c in columns]),
        ("pairs failed (genuine)", [f"{c.pairs_failed} ({c.genuine_pairs_failed})"
                                    for c in columns]),
        ("all pairs: genuine / impostor", [f"{c.genuine_pairs_all:,} / {c.impostor_pairs_all:,}"
                                           for c in columns]),
        ("embedder, per face", [_ms(c.ms_per_face.get("embedder")) for c in columns]),
        ("detector, per image", [_ms(c.ms_per_face.get("detector")) for c in columns]),
        ("whole pipeline, per image", [_ms(c.ms_per_face.get("pipeline")) for c in columns]),
    ]
    width = max(28, *(len(n) + 2 for n in names), *(len(v) + 2 for _, vs in rows for v in vs))
    lines = [header, "", f"{'':<30}" + "".join(f"{n:<{width}}" for n in names)]
    lines += [f"{label:<30}" + "".join(f"{v:<{width}}" for v in values)
              for label, values in rows]
    if teacher is not None:
        ratios = speed_ratios(ours, teacher)
        lines.append("")
        lines.append("speed, teacher time / ours: " + ", ".join(
            f"{stage} {'n/a' if r is None else f'{r:.1f}x'}" for stage, r in ratios.items()))
        if teacher.model_id == TEACHER_MODEL_ID:
            lines.append("(the teacher's pipeline, DlibTeacher.embed_largest, computes two "
                         "descriptors: the chip's and its mirror's; 'embedder' times one)")
    coarse = [far for far in ours.tar_at_far if far * ours.impostor_pairs_all < 1]
    if coarse:
        lines.append("")
        lines.append(f"note: only {ours.impostor_pairs_all:,} impostor pairs: at FAR "
                     f"{', '.join(far_key(f) for f in coarse)} the threshold is simply the "
                     "highest impostor score")
    if ours.calibration is not None:
        lines.append("")
        lines.append(f"* {CALIBRATION_NOTE}")
    return "\n".join(line.rstrip() for line in lines)
