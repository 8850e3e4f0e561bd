"""Recognition events: the entry log, with the name each person had when it was logged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from faceguard.errors import LibraryError
from faceguard.library.people import PeopleStore
from faceguard.library.records import Event, from_db_time, name_key, to_db_time


class EventStore(PeopleStore):
    """Recognition events: the entry log, with the name each person had when it was logged."""

    # -- events --------------------------------------------------------------------------------

    def add_event(
        self,
        timestamp_utc: datetime,
        kiosk_id: str,
        person_id: int | None,
        similarity: float | None,
        decision: str,
        crop_jpeg: bytes | None = None,
        liveness: float | None = None,
        *,
        access: str | None = None,
        access_reason: str | None = None,
    ) -> Event:
        """Log a recognition event (timezone-aware timestamp; stored in UTC).

        ``liveness`` is the fused live probability 0..1 of the visit (None: not scored).
        ``access`` is what the door's rules decided ("allowed" or "denied", with the plain
        ``access_reason``), None where no rule was asked.

        The person's current name is stored with the event so the log stays readable if the
        person is later removed.
        """
        stamp = to_db_time(timestamp_utc)
        if not isinstance(kiosk_id, str) or not kiosk_id:
            raise ValueError("kiosk_id must be a non-empty string")
        if not isinstance(decision, str) or not decision:
            raise ValueError("decision must be a non-empty string")
        sim = None if similarity is None else float(similarity)
        crop = None if crop_jpeg is None else bytes(crop_jpeg)
        live = None if liveness is None else float(liveness)
        if access not in (None, "allowed", "denied"):
            raise ValueError("access must be None, 'allowed' or 'denied'")
        reason = None if access is None else (access_reason or None)
        with self._write("logging an event"):
            snapshot = None
            if person_id is not None:
                snapshot = self._person_or_raise(person_id).name
            if crop is not None and self.encrypted():  # the sealed crop is bound to its id
                new_id = self._next_id("events")
                sealed, seal = self._seal("events", "crop_jpeg", new_id, crop)
                event_id = self._insert(
                    "INSERT INTO events (id, timestamp, kiosk_id, person_id, person_name, "
                    "similarity, decision, crop_jpeg, liveness, crop_seal, access, "
                    "access_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (new_id, stamp, kiosk_id, person_id, snapshot, sim, decision, sealed, live,
                     seal, access, reason),
                )
            else:
                event_id = self._insert(
                    "INSERT INTO events (timestamp, kiosk_id, person_id, person_name, "
                    "similarity, decision, crop_jpeg, liveness, access, access_reason) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (stamp, kiosk_id, person_id, snapshot, sim, decision, crop, live, access,
                     reason),
                )
        return Event(
            id=event_id,
            timestamp=from_db_time(stamp),
            kiosk_id=kiosk_id,
            person_id=person_id,
            person_name=snapshot,
            similarity=sim,
            decision=decision,
            has_crop=crop is not None,
            crop_jpeg=crop,
            liveness=live,
            access=access,
            access_reason=reason,
        )

    @staticmethod
    def _event_filter(
        start: datetime | None,
        end: datetime | None,
        person: int | str | None,
        decision: str | None,
        kiosk_id: str | None,
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if start is not None:
            clauses.append("e.timestamp >= ?")
            params.append(to_db_time(start))
        if end is not None:
            clauses.append("e.timestamp < ?")
            params.append(to_db_time(end))
        if isinstance(person, int) and not isinstance(person, bool):
            clauses.append("e.person_id = ?")
            params.append(person)
        elif isinstance(person, str):
            clauses.append("fg_name_key(COALESCE(p.name, e.person_name)) = ?")
            params.append(name_key(person))
        if decision is not None:
            clauses.append("e.decision = ?")
            params.append(decision)
        if kiosk_id is not None:
            clauses.append("e.kiosk_id = ?")
            params.append(kiosk_id)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def query_events(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        person: int | str | None = None,
        decision: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        *,
        kiosk_id: str | None = None,
        newest_first: bool = False,
        with_crops: bool = False,
    ) -> list[Event]:
        """Events with ``start <= timestamp < end`` (aware datetimes), oldest first by default.

        ``person`` is a person id, or a name matched case-insensitively against the current
        name (or, for removed people, the name stored with the event).
        """
        where, params = self._event_filter(start, end, person, decision, kiosk_id)
        crop = "e.crop_jpeg, e.crop_seal" if with_crops else "NULL, NULL"
        direction = "DESC" if newest_first else "ASC"
        sql = (
            "SELECT e.id, e.timestamp, e.kiosk_id, e.person_id, "
            "COALESCE(p.name, e.person_name), e.similarity, e.decision, "
            f"e.crop_jpeg IS NOT NULL, e.liveness, {crop}, e.access, e.access_reason "
            f"FROM events e LEFT JOIN people p ON p.id = e.person_id{where} "
            f"ORDER BY e.timestamp {direction}, e.id {direction} LIMIT ? OFFSET ?"
        )
        params += [-1 if limit is None else int(limit), int(offset)]
        with self._read("reading events"):
            rows = self._conn.execute(sql, params).fetchall()
            crops = [self._unseal("events", "crop_jpeg", r[0], r[9], r[10]) for r in rows]
        return [
            Event(
                id=r[0],
                timestamp=from_db_time(r[1]),
                kiosk_id=r[2],
                person_id=r[3],
                person_name=r[4],
                similarity=r[5],
                decision=r[6],
                has_crop=bool(r[7]),
                crop_jpeg=opened,
                liveness=r[8],
                access=r[11],
                access_reason=r[12],
            )
            for r, opened in zip(rows, crops, strict=True)
        ]

    def count_events(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        person: int | str | None = None,
        decision: str | None = None,
        *,
        kiosk_id: str | None = None,
    ) -> int:
        """How many events :meth:`query_events` would return without a limit."""
        where, params = self._event_filter(start, end, person, decision, kiosk_id)
        with self._read("counting events"):
            row = self._conn.execute(
                f"SELECT count(*) FROM events e LEFT JOIN people p ON p.id = e.person_id{where}",
                params,
            ).fetchone()
        return int(row[0])

    def get_event_crop(self, event_id: int) -> bytes | None:
        """The face crop stored with an event, if any."""
        with self._read("reading an event"):
            row = self._conn.execute(
                "SELECT crop_jpeg, crop_seal FROM events WHERE id = ?", (event_id,)
            ).fetchone()
            if row is None:
                raise LibraryError(f"There is no event with id {event_id}.")
            return self._unseal("events", "crop_jpeg", event_id, row[0], row[1])

