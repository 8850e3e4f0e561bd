"""Validators for setting values: each returns a problem description, or None when fine.

A declaration (:func:`faceguard.settings.schema.setting`) names one of these; the message is
worded to follow "Setting <name> ...".
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def check_str(value: Any, *, max_len: int = 256, allow_empty: bool = False) -> str | None:
    """Return a problem description for a bad string, or None when it is fine."""
    if not isinstance(value, str):
        return "must be text"
    if not allow_empty and not value.strip():
        return "must not be empty"
    if len(value) > max_len:
        return f"must be at most {max_len} characters"
    return None


def check_float(value: Any, lo: float, hi: float, *, lo_open: bool = False) -> str | None:
    """Problem description for a number outside [lo, hi] (or (lo, hi])."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number"
    if not math.isfinite(value):
        return "must be a finite number"
    if value < lo or (lo_open and value == lo) or value > hi:
        left = "(" if lo_open else "["
        return f"must be in {left}{lo}, {hi}]"
    return None


def check_int(value: Any, lo: int, hi: int) -> str | None:
    """Problem description for a non-integer or an integer outside [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be a whole number"
    if not lo <= value <= hi:
        return f"must be in [{lo}, {hi}]"
    return None


def check_model_file(value: Any) -> str | None:
    """A model file is a plain file name inside the models folder."""
    problem = check_str(value)
    if problem:
        return problem
    if Path(value).name != value or value in (".", ".."):
        return "must be a file name without a folder"
    return None


def check_choice(value: Any, choices: tuple[str, ...]) -> str | None:
    """Problem description for a value that is not one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        return "must be one of " + ", ".join(choices)
    return None


def check_hex(value: Any) -> str | None:
    """Empty, or bytes written as hex ("A0 01 01 A2")."""
    problem = check_str(value, max_len=256, allow_empty=True)
    if problem or not value.strip():
        return problem
    try:
        bytes.fromhex(value.replace(" ", "").replace(":", ""))
    except ValueError:
        return "must be bytes in hex, e.g. 'A0 01 01 A2'"
    return None


def check_pin_hash(value: Any) -> str | None:
    """The PIN hash is absent (no PIN) or non-empty text."""
    if value is None:
        return None
    return check_str(value, max_len=1024)
