"""Pin native thread pools before numpy/onnxruntime start: unpinned pools make latency jumpy.

Import this module first in entry points. Values already set in the environment win.
"""

from __future__ import annotations

import os

DEFAULT_THREADS = "1"
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
              "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ.setdefault(_name, DEFAULT_THREADS)


def native_threads() -> int:
    """The BLAS/OpenMP thread count in force for this process."""
    return int(os.environ.get("OMP_NUM_THREADS", DEFAULT_THREADS))
