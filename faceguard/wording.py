"""Small helpers for the words users read (shared by the CLI and the GUI)."""

from __future__ import annotations


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 photo``, ``2 photos``, ``1 person``, ``3 people``, ``1 try``, ``4 tries``."""
    if count == 1:
        return f"{count} {singular}"
    if plural_form is None:
        plural_form = singular[:-1] + "ies" if singular.endswith("y") and \
            singular[-2:-1] not in "aeiou" else singular + "s"
    return f"{count} {plural_form}"
