"""`faceguard bench`'s 1:N search rows: the matcher against a plain float32 matrix-vector
product of the same templates, at each library size."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np

from faceguard.bench_timing import paired_best_ms, paired_median_ms
from faceguard.library.matcher import Matcher
from faceguard.library.template_index import DEFAULT_FUSION, Fusion

TEMPLATES_PER_PERSON = 4


def match_stages(ctx: Any, repeats: int, sizes: Sequence[int]) -> list[dict[str, Any]]:
    """One row a library size: the median (and fastest) 1:N search with the context's
    fusion rule, and its ratio to a float32 matrix-vector product of the same templates."""
    stages: list[dict[str, Any]] = []
    rng = np.random.default_rng(0)
    query = rng.standard_normal(128).astype(np.float32)
    query /= np.linalg.norm(query)
    rule: Fusion = getattr(ctx, "fusion", DEFAULT_FUSION)  # the shipped model's rule
    for size in sizes:
        matrix = rng.standard_normal((size, 128), dtype=np.float32)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        people = np.repeat(np.arange(size // TEMPLATES_PER_PERSON + 1), TEMPLATES_PER_PERSON)
        matcher = Matcher(fusion=rule)
        matcher.load(people[:size].astype(np.int64), matrix)
        runs = max(5, repeats // (1 + size // 100_000))
        search_ms, plain_ms = paired_median_ms(partial(matcher.search, query),
                                               partial(np.dot, matrix, query), runs)
        best_search, best_plain = paired_best_ms(partial(matcher.search, query),
                                                 partial(np.dot, matrix, query), runs)
        stages.append({"stage": f"match 1:N, {size:,} templates", "ms": search_ms,
                       "fusion": rule, "vs_matvec": round(search_ms / plain_ms, 3),
                       "vs_matvec_best": round(best_search / best_plain, 3),
                       "note": f"{search_ms / plain_ms:.2f}x a float32 matrix-vector "
                               f"product of the same templates ({plain_ms:.2f} ms); fastest "
                               f"runs {best_search / best_plain:.2f}x; rule {rule}"})
        del matrix, matcher
    return stages
