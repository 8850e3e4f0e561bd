"""`faceguard bench`'s 1:N search rows: the full search against a plain float32
matrix-vector product of the same templates, at each library size, in one run."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np

from faceguard.bench_timing import paired_best_ms, paired_median_ms
from faceguard.library.half_scores import half_scores, score_kernel
from faceguard.library.matcher import Matcher
from faceguard.library.template_index import DEFAULT_FUSION, Fusion
from faceguard.native_threads import native_threads

TEMPLATES_PER_PERSON = 4


def match_stages(ctx: Any, repeats: int, sizes: Sequence[int]) -> list[dict[str, Any]]:
    """One row a library size: the full 1:N search, ``Matcher.search(query)`` under the
    context's fusion rule (one float16 scan of the templates and, under ``max_mean``, the mean
    templates; float32 re-rank; decision), against NumPy's plain float32 ``matrix @ query`` of
    the same (N, 128) templates, timed in alternation on the threads named in the row; the
    float16 scan alone beside the same product, to say where the time goes."""
    stages: list[dict[str, Any]] = []
    rng = np.random.default_rng(0)
    query = rng.standard_normal(128).astype(np.float32)
    query /= np.linalg.norm(query)
    rule: Fusion = getattr(ctx, "fusion", DEFAULT_FUSION)  # the shipped model's rule
    kernel = score_kernel()
    threads = {"search_onnxruntime": kernel.threads if kernel else 0,
               "matvec_blas": native_threads()}
    for size in sizes:
        matrix = rng.standard_normal((size, 128), dtype=np.float32)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        people = np.repeat(np.arange(size // TEMPLATES_PER_PERSON + 1), TEMPLATES_PER_PERSON)
        matcher = Matcher(fusion=rule)
        matcher.load(people[:size].astype(np.int64), matrix)
        index = matcher.index
        rows = index.rows
        float32_mb = index.exact.nbytes / 1e6 if index.exact is not None else 0.0
        search, plain = partial(matcher.search, query), partial(np.dot, matrix, query)
        runs = max(5, repeats // (1 + size // 100_000))
        search_ms, plain_ms = paired_median_ms(search, plain, runs)
        best_search, best_plain = paired_best_ms(search, plain, runs)
        # memory as a large library holds it: float16 rows, residuals, means and ids
        per_100k = (matcher.nbytes - float32_mb * 1e6) * 100_000 / size / 1e6
        row: dict[str, Any] = {
            "stage": f"match 1:N, {size:,} templates", "ms": search_ms, "fusion": rule,
            "matvec_ms": plain_ms, "vs_matvec": round(search_ms / plain_ms, 3),
            "vs_matvec_best": round(best_search / best_plain, 3),
            "search_path": "float32 rows" if index.exact is not None else "float16 scan",
            "scanned_rows": int(rows.shape[0]), "float32_rows_mb": round(float32_mb, 1),
            "threads": threads, "mb_per_100k_templates": round(per_100k, 1)}
        how = (f"search ({rule}) {search_ms / plain_ms:.2f}x float32 matrix @ query of the same "
               f"templates ({plain_ms:.2f} ms; fastest runs {best_search / best_plain:.2f}x); ")
        if index.exact is None:
            scan_ms, scan_plain_ms = paired_median_ms(
                partial(half_scores, rows, query[None, :]), plain, runs)
            scan_share = scan_ms / scan_plain_ms * plain_ms / search_ms
            row.update(scan_vs_matvec=round(scan_ms / scan_plain_ms, 3),
                       scan_share=round(scan_share, 3))
            how += (f"float16 scan of {rows.shape[0]:,} rows {scan_ms / scan_plain_ms:.2f}x, "
                    f"{scan_share:.0%} of the search; ")
        else:
            how += (f"a small library: its {rows.shape[0]:,} rows also kept in float32 "
                    f"({float32_mb:.1f} MB), one product; ")
        row["note"] = how + (f"threads {threads['search_onnxruntime']} / "
                             f"{threads['matvec_blas']}; {per_100k:.1f} MB per 100k templates")
        stages.append(row)
        del matrix, matcher, index, rows
    return stages

