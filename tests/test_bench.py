"""`faceguard bench`'s kiosk sections run end to end and report figures that hang together
(the figures themselves are measurements, not test assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faceguard.bench import SECTIONS, format_table, run_benchmarks
from faceguard.cli import EXIT_OK
from faceguard.core.context import AppContext
from tests.conftest import run_cli


def test_idle_and_peak_sections(tmp_path: Path) -> None:
    ctx = AppContext(tmp_path / "data")
    try:
        report = run_benchmarks(ctx, repeats=3, sections=("idle", "peak"))
    finally:
        ctx.close()
    idle = report["idle"]
    gated, ungated = idle["motion gate"], idle["no gate"]
    assert 0 < gated["cpu_share_of_one_core"] < ungated["cpu_share_of_one_core"]
    peak = report["peak"]
    assert peak["matmul_gflops"] > 0 and peak["embedder_mflop"] > 100  # ~225 MFLOP
    assert 0 < peak["share_of_peak"] < 2
    table = format_table(report)
    assert "empty scene at 15 frames/s" in table and "GFLOP/s" in table


def test_sections_are_checked(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(data_dir, "bench", "--sections", "nonsense") != EXIT_OK
    assert "unknown bench section" in capsys.readouterr().err
    assert run_cli(data_dir, "bench", "--json", "--repeats", "2", "--sections", "memory") \
        == EXIT_OK
    memory = json.loads(capsys.readouterr().out)["memory"]
    assert memory["templates"] == 100_000 and memory["templates_mb"] > memory["models_mb"]
    assert 45 < memory["matcher_mb"] < 80  # float16 rows and residuals: ~50 MiB per 100k
    assert set(SECTIONS) >= {"frame", "tracking", "cold_start"}


def test_match_rows_name_what_is_compared() -> None:
    from types import SimpleNamespace

    from faceguard.bench_search import match_stages

    small, large = match_stages(SimpleNamespace(fusion="max_mean"), repeats=2,
                                sizes=(4_000, 40_000))
    for row, size in ((small, 4_000), (large, 40_000)):
        assert row["fusion"] == "max_mean" and row["stage"] == f"match 1:N, {size:,} templates"
        assert row["scanned_rows"] == size + size // 4  # templates, then a mean row a person
        assert row["threads"]["search_onnxruntime"] == 1 and row["threads"]["matvec_blas"] >= 1
        assert row["ms"] > 0 and row["matvec_ms"] > 0
        assert 50 < row["mb_per_100k_templates"] < 70  # rows, residuals, means and ids
        assert "matrix @ query" in row["note"]
    # a small library is searched in float32; a large one by the float16 scan
    assert small["search_path"] == "float32 rows" and small["float32_rows_mb"] > 0
    assert large["search_path"] == "float16 scan" and large["scan_share"] > 0
