"""What encryption at rest costs (`faceguard bench --sections encryption`).

Two libraries of ``templates`` random templates (128-d vectors, small crops) are built in a
temporary folder, one of them encrypted with :func:`faceguard.library.encryption.enable`.
Measured on each: opening the library and loading every vector for matching (what the kiosk
does at start; the encrypted one also unwraps its key: scrypt, timed on its own), and writing
one event with a 4 KB face crop (medians). Ratios are encrypted over plain, in one run.
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from faceguard.library import encryption
from faceguard.library.database import FaceLibrary

PASSPHRASE = "bench passphrase, not a secret"
CROP_BYTES = 4096
MODEL = "bench"


def _build(path: Path, templates: int, rng: np.random.Generator) -> None:
    vectors = rng.standard_normal((templates, 128)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    with FaceLibrary.open(path) as library, library.upkeep("building") as conn:
        people = max(1, templates // 4)
        conn.executemany("INSERT INTO people (id, name, name_key, active, created) VALUES "
                         "(?, ?, ?, 1, ?)", ((i + 1, f"P{i}", f"p{i}", now)
                                             for i in range(people)))
        conn.executemany(
            "INSERT INTO templates (person_id, embedding, dim, model_id, quality, crop_jpeg, "
            "created) VALUES (?, ?, 128, ?, 0.9, ?, ?)",
            ((i % people + 1, vectors[i].astype("<f4").tobytes(), MODEL,
              b"\xff\xd8" + secrets.token_bytes(64), now) for i in range(templates)))


def _open_and_load(path: Path, passphrase: str | None) -> tuple[float, float]:
    """(seconds to open and load every vector, of which unwrapping the key)."""
    started = time.perf_counter()
    with FaceLibrary.open(path) as library:
        unwrap = 0.0
        if passphrase is not None:
            before = time.perf_counter()
            encryption.unlock(library, passphrase)
            unwrap = time.perf_counter() - before
        library.templates_matrix(MODEL)
    return time.perf_counter() - started, unwrap


def _event_ms(path: Path, passphrase: str | None, writes: int) -> float:
    crop = b"\xff\xd8" + secrets.token_bytes(CROP_BYTES - 2)
    times = []
    with FaceLibrary.open(path) as library:
        if passphrase is not None:
            encryption.unlock(library, passphrase)
        for _ in range(writes):
            started = time.perf_counter()
            library.add_event(datetime.now(UTC), "bench", None, 0.2, "unknown", crop)
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def encryption_cost(templates: int = 100_000, writes: int = 200,
                    repeats: int = 3) -> dict[str, Any]:
    """The bench section: open + load and per-event write, plain and encrypted."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="faceguard-bench-enc-") as folder:
        plain, sealed = Path(folder) / "plain.db", Path(folder) / "sealed.db"
        _build(plain, templates, rng)
        _build(sealed, templates, rng)
        with FaceLibrary.open(sealed) as library:
            enabled = encryption.enable(library, passphrase=PASSPHRASE, use_keyring=False,
                                        actor="bench")
        open_plain, open_sealed, unwraps = [], [], []
        for _ in range(repeats):  # alternate, so load on the machine hits both alike
            open_plain.append(_open_and_load(plain, None)[0])
            total, unwrap = _open_and_load(sealed, PASSPHRASE)
            open_sealed.append(total)
            unwraps.append(unwrap)
        event_plain = _event_ms(plain, None, writes)
        event_sealed = _event_ms(sealed, PASSPHRASE, writes)
    plain_s, sealed_s = statistics.median(open_plain), statistics.median(open_sealed)
    return {"templates": templates, "enable_s": round(enabled.seconds, 2),
            "blobs_sealed": enabled.sealed,
            "open_load_s": {"plain": round(plain_s, 3), "encrypted": round(sealed_s, 3),
                            "of which key unwrap (scrypt)": round(statistics.median(unwraps),
                                                                  3)},
            "open_ratio": round(sealed_s / plain_s, 2),
            "event_write_ms": {"plain": round(event_plain, 3),
                               "encrypted": round(event_sealed, 3)},
            "event_ratio": round(event_sealed / event_plain, 2),
            "event_crop_bytes": CROP_BYTES}


def format_cost(section: dict[str, Any]) -> list[str]:
    """Plain lines for the bench table."""
    load, write = section["open_load_s"], section["event_write_ms"]
    return [f"encryption at rest, {section['templates']:,} templates "
            f"(enable: {section['blobs_sealed']:,} blobs sealed in {section['enable_s']} s)",
            f"  open + load every vector: plain {load['plain']:.3f} s, encrypted "
            f"{load['encrypted']:.3f} s ({section['open_ratio']}x; key unwrap "
            f"{load['of which key unwrap (scrypt)']:.3f} s of it)",
            f"  write one event with a {section['event_crop_bytes']} B crop: plain "
            f"{write['plain']:.3f} ms, encrypted {write['encrypted']:.3f} ms "
            f"({section['event_ratio']}x)"]
