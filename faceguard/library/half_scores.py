"""Cosine scores of float16 templates against float32 queries, computed block by block.

The matcher keeps each template as two float16 rows: ``high`` (the template rounded to
float16) and ``low`` (what that rounding lost, also in float16; high + low carries 22 of
float32's 24 bits). A search scans only ``high``: half the bytes a float32 scan reads (a 1:N
search is bound by memory traffic, not arithmetic), then re-ranks its best candidates in
float32 from high + low (:func:`exact_rows`). Each block of rows is widened to
float32 while it sits in the cache and multiplied in float32, by the two-node ONNX kernel
``half_scores.onnx`` (onnxruntime's cast uses the CPU's F16C instructions; NumPy's float16 cast
is scalar and would make a search several times slower). Without the kernel file, NumPy does
the same arithmetic, slower.

The scan's scores differ from float32 ones by at most :data:`SCAN_ERROR` for unit vectors
(float16 keeps 11 bits: each product term is off by at most 2^-11 of itself, and by
Cauchy-Schwarz their sum by 2^-11 of |q||x| = 1); the re-rank takes every person within twice
that of the runner-up, so the best two people are the float32 ones.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from faceguard.errors import ModelError
from faceguard.vision.onnx_model import OnnxModel, TensorSpec, default_model_path

log = logging.getLogger(__name__)

KERNEL_FILE = "half_scores.onnx"
BLOCK_ROWS = 8_192  # 2 MiB of float16 rows of 128 dimensions: widened inside the cache
SMALL_ROWS = 512  # below this, NumPy is quicker than a call into onnxruntime
STORAGE_DTYPE = np.float16
# Bound on |scan score - float32 score| for unit vectors: float16's rounding (2^-11 of each
# value), plus float16's subnormals and float32 summation (1e-5 covers both at D <= 4096).
SCAN_ERROR = 2.0 ** -11 + 1e-5


class _ScoreKernel(OnnxModel):
    inputs = (TensorSpec("templates", (None, None)), TensorSpec("queries", (None, None)))
    outputs = (TensorSpec("scores", (None, None)),)

    def scores_into(self, matrix: np.ndarray, transposed: np.ndarray, out: np.ndarray) -> None:
        """``out`` (N, Q) float32, C-contiguous = float16 ``matrix`` (N, D) x ``transposed``
        (D, Q), a block of rows per call, written in place (no copy of the scores)."""
        binding = self.session.io_binding()
        binding.bind_cpu_input("queries", transposed)
        address, row_bytes = out.ctypes.data, out.strides[0]
        for lo in range(0, matrix.shape[0], BLOCK_ROWS):
            block = matrix[lo:lo + BLOCK_ROWS]
            binding.bind_cpu_input("templates", block)
            binding.bind_output("scores", "cpu", 0, np.float32, [len(block), out.shape[1]],
                                address + lo * row_bytes)
            self.session.run_with_iobinding(binding)


_lock = threading.Lock()
_kernel: _ScoreKernel | None = None
_kernel_failed = False


def score_kernel() -> _ScoreKernel | None:
    """The shipped kernel, loaded once on first use (None, with a warning, when unusable)."""
    global _kernel, _kernel_failed
    with _lock:
        if _kernel is None and not _kernel_failed:
            try:
                _kernel = _ScoreKernel(default_model_path(KERNEL_FILE), threads=1)
            except ModelError as error:
                _kernel_failed = True
                log.warning("float16 search kernel unavailable, using NumPy (slower): %s",
                            error)
        return _kernel


def half_scores(matrix: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """(N, D) float16 templates x (Q, D) float32 queries -> (N, Q) float32 scores."""
    rows = matrix.shape[0]
    transposed = np.ascontiguousarray(np.asarray(queries, dtype=np.float32).T)
    out = np.empty((rows, transposed.shape[1]), dtype=np.float32)
    kernel = score_kernel() if rows >= SMALL_ROWS else None
    if kernel is not None:
        kernel.scores_into(np.ascontiguousarray(matrix), transposed, out)
        return out
    for lo in range(0, rows, BLOCK_ROWS):
        block = matrix[lo:lo + BLOCK_ROWS]
        np.matmul(block.astype(np.float32), transposed, out=out[lo:lo + len(block)])
    return out


def split(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float32 rows as the matcher stores them: (high, low), both float16, C-contiguous."""
    exact = np.asarray(rows, dtype=np.float32)
    high = np.ascontiguousarray(exact, dtype=STORAGE_DTYPE)
    low = np.ascontiguousarray(exact - high.astype(np.float32), dtype=STORAGE_DTYPE)
    return high, low


def exact_rows(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Stored rows back in float32 (within 2^-22 of each original value's magnitude)."""
    return high.astype(np.float32) + low.astype(np.float32)
