"""Where FaceGuard finds its resources and keeps its data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from platformdirs import user_data_dir

APP_NAME = "FaceGuard"
DATA_DIR_ENV = "FACEGUARD_DATA_DIR"
TRAIN_CACHE_ENV = "FACEGUARD_TRAIN_CACHE"


def resources_dir() -> Path:
    """The resources folder, from a source checkout or a frozen (PyInstaller) build."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def models_dir() -> Path:
    """Folder holding the ONNX models and their manifest."""
    return resources_dir() / "models"


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: explicit override, then $FACEGUARD_DATA_DIR, then the user data dir."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path(user_data_dir(APP_NAME, appauthor=False))


def train_cache_dir() -> Path:
    """Cache for training artefacts (crops, teacher vectors, checkpoints), outside the repo."""
    env = os.environ.get(TRAIN_CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "faceguard-train"
