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


def one_line(text: str) -> str:
    """Text safe for line-oriented output: control characters (a newline in a file name)
    are written as escapes, so one message stays one line."""
    if text.isprintable():
        return text
    escaped = []
    for char in text:
        if char.isprintable() or char == " ":
            escaped.append(char)
        else:
            escaped.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(escaped)


def access_text(access: str | None, reason: str | None) -> str:
    """An event's door decision for people: ``allowed``, ``denied: outside your hours``, or
    ``""`` where no rule was asked (unknown faces, attacks, no door)."""
    if access is None:
        return ""
    if access == "denied" and reason:
        return f"denied: {reason}"
    return access
