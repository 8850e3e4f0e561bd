"""People: names and employee ids unique among active people (ignoring case and spaces)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faceguard.errors import LibraryError
from faceguard.library.audit import AuditStore
from faceguard.library.records import (
    UNSET,
    Person,
    _Unset,
    clean_name,
    clean_optional,
    from_db_time,
    name_key,
    sql_name_key,
    to_db_time,
    utc_now,
)


class PeopleStore(AuditStore):
    """People: names and employee ids unique among active people (ignoring case and spaces)."""

    # -- people --------------------------------------------------------------------------------

    _PERSON_SQL = """
        SELECT p.id, p.name, p.employee_id, p.department, p.active, p.created,
               (SELECT count(*) FROM templates t WHERE t.person_id = p.id) AS template_count
        FROM people p
    """

    @staticmethod
    def _person(row: Sequence[Any]) -> Person:
        return Person(
            id=row[0],
            name=row[1],
            employee_id=row[2],
            department=row[3],
            active=bool(row[4]),
            created=from_db_time(row[5]),
            template_count=row[6],
        )

    def _person_or_raise(self, person_id: int) -> Person:
        row = self._conn.execute(self._PERSON_SQL + " WHERE p.id = ?", (person_id,)).fetchone()
        if row is None:
            raise LibraryError(f"There is no person with id {person_id}.")
        return self._person(row)

    def _check_unique(
        self, name: str | None, employee_id: str | None, exclude_id: int | None
    ) -> None:
        """Raise LibraryError if an active person (other than exclude_id) has the name/id."""
        if name is not None:
            row = self._conn.execute(
                "SELECT name FROM people WHERE active = 1 AND name_key = ? AND id IS NOT ?",
                (name_key(name), exclude_id),
            ).fetchone()
            if row:
                raise LibraryError(f"An active person named {row[0]!r} already exists.")
        if employee_id is not None:
            row = self._conn.execute(
                "SELECT name, employee_id FROM people WHERE active = 1 AND employee_key = ? "
                "AND id IS NOT ?",
                (name_key(employee_id), exclude_id),
            ).fetchone()
            if row:
                same = "" if row[1] == employee_id else f" (as {row[1]!r})"
                raise LibraryError(
                    f"Employee id {employee_id!r} already belongs to {row[0]!r}{same}; "
                    "employee ids are compared without regard to case.")

    def add_person(
        self,
        name: str,
        employee_id: str | None = None,
        department: str | None = None,
        *,
        actor: str | None = None,
    ) -> Person:
        """Add an active person. LibraryError if the name or employee id is already in use
        among active people (names compare case-insensitively)."""
        clean = clean_name(name)
        emp = clean_optional(employee_id, "employee id")
        dept = clean_optional(department, "department")
        with self._write("adding a person"):
            self._check_unique(clean, emp, None)
            person_id = self._insert(
                "INSERT INTO people (name, name_key, employee_id, employee_key, department, "
                "active, created) VALUES (?, ?, ?, ?, ?, 1, ?)",
                (clean, name_key(clean), emp, sql_name_key(emp), dept,
                 to_db_time(utc_now())),
            )
            self._audit_in_tx(actor, "add_person", {"id": person_id, "name": clean})
            return self._person_or_raise(person_id)

    def get_person(self, person_id: int) -> Person | None:
        """The person with this id (active or not), or None."""
        with self._read("reading a person"):
            row = self._conn.execute(self._PERSON_SQL + " WHERE p.id = ?", (person_id,)).fetchone()
            return self._person(row) if row else None

    def find_person_by_name(self, name: str, *, include_inactive: bool = False) -> Person | None:
        """The active person with this name (case-insensitive), or None. With
        ``include_inactive``, falls back to the most recently created inactive one."""
        order = "p.active DESC, p.created DESC, p.id DESC"
        where = "p.name_key = ?" + ("" if include_inactive else " AND p.active = 1")
        with self._read("finding a person"):
            row = self._conn.execute(
                f"{self._PERSON_SQL} WHERE {where} ORDER BY {order} LIMIT 1", (name_key(name),)
            ).fetchone()
            return self._person(row) if row else None

    def list_people(self, include_inactive: bool = False) -> list[Person]:
        """People sorted by name (case-insensitive); active ones only unless asked."""
        where = "" if include_inactive else " WHERE p.active = 1"
        with self._read("listing people"):
            rows = self._conn.execute(
                f"{self._PERSON_SQL}{where} ORDER BY p.name_key, p.id"
            ).fetchall()
            return [self._person(r) for r in rows]

    def update_person(
        self,
        person_id: int,
        *,
        name: str | _Unset = UNSET,
        employee_id: str | _Unset | None = UNSET,
        department: str | _Unset | None = UNSET,
        active: bool | _Unset = UNSET,
        actor: str | None = None,
    ) -> Person:
        """Change some fields of a person; others keep their values. Returns the new row.

        Deactivating keeps the person's templates but leaves them out of matching
        (``templates_matrix``) and frees their name for someone else.
        """
        changes: dict[str, Any] = {}
        if not isinstance(name, _Unset):
            changes["name"] = clean_name(name)
            changes["name_key"] = name_key(changes["name"])
        if not isinstance(employee_id, _Unset):
            changes["employee_id"] = clean_optional(employee_id, "employee id")
            changes["employee_key"] = sql_name_key(changes["employee_id"])
        if not isinstance(department, _Unset):
            changes["department"] = clean_optional(department, "department")
        if not isinstance(active, _Unset):
            changes["active"] = 1 if active else 0
        with self._write("updating a person"):
            current = self._person_or_raise(person_id)
            if not changes:
                return current
            will_be_active = bool(changes.get("active", current.active))
            if will_be_active:
                self._check_unique(
                    changes.get("name", current.name),
                    changes.get("employee_id", current.employee_id),
                    person_id,
                )
            assignments = ", ".join(f"{column} = ?" for column in changes)
            self._db.execute(
                f"UPDATE people SET {assignments} WHERE id = ?", [*changes.values(), person_id]
            )
            details = {k: v for k, v in changes.items() if k not in ("name_key", "employee_key")}
            self._audit_in_tx(actor, "update_person", {"id": person_id, **details})
            return self._person_or_raise(person_id)

    def rename_person(self, person_id: int, new_name: str, *, actor: str | None = None) -> Person:
        """Give a person a new name (unique among active people)."""
        return self.update_person(person_id, name=new_name, actor=actor)

    def remove_person(
        self, person_id: int, *, forget_event_crops: bool = False, actor: str | None = None
    ) -> None:
        """Delete a person and their templates and stored crops.

        Their events stay in the log with ``person_id`` NULL and the name snapshot taken when
        each was logged; ``forget_event_crops`` also erases the face images on those events.
        """
        with self._write("removing a person"):
            person = self._person_or_raise(person_id)
            if forget_event_crops:
                self._db.execute(
                    "UPDATE events SET crop_jpeg = NULL WHERE person_id = ?", (person_id,)
                )
            self._db.execute("DELETE FROM people WHERE id = ?", (person_id,))
            self._audit_in_tx(
                actor,
                "remove_person",
                {"id": person_id, "name": person.name, "forget_event_crops": forget_event_crops},
            )

