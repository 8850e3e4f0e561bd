"""Each setting as ``faceguard config`` and the settings dialog see it: :data:`OPTIONS`.

Built from the declarations in :mod:`faceguard.settings.schema`; nothing here is declared twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faceguard.settings.schema import Settings, SettingsError


@dataclass(frozen=True)
class Option:
    """One setting as ``faceguard config`` and the settings dialog see it."""

    key: str  # dotted, e.g. "recognition.threshold"
    name: str  # the Settings field
    default: Any
    help: str
    check: Callable[[Any], str | None]
    kind: str  # "text", "int", "float" or "float-or-none"
    secret: bool = False  # declared with repr=False: never printed or audited in clear

    def shown(self, value: Any) -> str:
        """The value as ``faceguard config`` and the audit show it (secrets hidden)."""
        if self.secret:
            return "(set)" if value else "(not set)"
        return "none" if value is None else str(value)

    def parse(self, text: str) -> Any:
        """A value from command-line text (SettingsError with the reason when it is bad)."""
        cleaned = text.strip()
        try:
            if self.kind == "float-or-none" and cleaned.lower() in ("none", "auto", ""):
                value: Any = None
            elif self.kind in ("float", "float-or-none"):
                value = float(cleaned)
            elif self.kind == "int":
                value = int(cleaned)
            else:
                value = text
        except ValueError:
            wanted = "a whole number" if self.kind == "int" else "a number"
            raise SettingsError(f"Setting {self.key} needs {wanted}, not {text!r}.") from None
        problem = self.check(value)
        if problem:
            raise SettingsError(f"Setting {self.key} {problem} (got {value!r}).")
        return value


def _kind(annotation: Any) -> str:
    text = str(annotation)
    if "float" in text and "None" in text:
        return "float-or-none"
    return next((kind for kind in ("int", "float") if text == kind), "text")


OPTIONS: tuple[Option, ...] = tuple(
    Option(f.metadata["key"], f.name, f.default, f.metadata["help"], f.metadata["check"],
           _kind(f.type), secret=not f.repr)
    for f in dataclasses.fields(Settings) if "key" in f.metadata and f.name != "pin_hash")
_BY_KEY = {option.key: option for option in OPTIONS}


def option(key: str) -> Option:
    """The setting with this dotted key (SettingsError naming the known keys otherwise)."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise SettingsError(f"There is no setting {key!r}; 'faceguard config list' shows "
                            "them all.") from None
