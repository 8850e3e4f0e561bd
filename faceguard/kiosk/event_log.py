"""A kiosk decision made a record: the event stored in the library with its crop, the access
rules asked first (their answer is kept with the event) and carried out at the door after.

Unknown faces and suspected attacks never ask the rules: the door stays shut. A repeated attack
raises an alert, which is audited here.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from faceguard.core.access import Decision
from faceguard.core.gate import Gate
from faceguard.errors import FaceGuardError
from faceguard.kiosk.decisions import KioskEvent
from faceguard.kiosk.liveness_gate import LivenessAlert
from faceguard.library.database import FaceLibrary
from faceguard.vision.image_io import encode_jpeg

log = logging.getLogger(__name__)

EVENT_CROP_QUALITY = 85


def store_event(library: FaceLibrary, gate: Gate | None, event: KioskEvent
                ) -> tuple[KioskEvent | None, str | None]:
    """Store a decided event (one transaction) and act at the door: the logged event (its id,
    the stored name, what the door did), or None and why it was not logged."""
    crop = None
    if event.crop is not None:
        try:
            crop = encode_jpeg(event.crop, EVENT_CROP_QUALITY)
        except FaceGuardError:
            crop = None
    access, fault = _access(gate, event)
    try:
        stored = library.add_event(
            event.timestamp, event.kiosk_id, event.person_id, event.similarity,
            event.decision, crop, event.liveness,
            access=None if access is None else ("allowed" if access.allowed else "denied"),
            access_reason=None if access is None else access.reason)
    except FaceGuardError as error:
        log.warning("event not logged: %s", error)
        return None, f"event not logged: {error}"
    logged = replace(event, event_id=stored.id,
                     person_name=stored.person_name or event.person_name)
    if fault is not None:
        logged = replace(logged, door_reason=f"door fault: {fault}")
    elif access is not None:
        assert gate is not None
        logged = _at_door(gate, logged, access)
    if logged.attack:
        score = "unsure" if logged.liveness is None else f"{logged.liveness:.3f}"
        log.warning("presentation attack suspected at kiosk %s (matched to %s, liveness "
                    "%s); event %s", logged.kiosk_id, logged.claimed_name or "?", score,
                    logged.event_id)
    return logged, None


def audit_alert(library: FaceLibrary, alert: LivenessAlert) -> None:
    """Repeated suspected attacks: a logged warning and an audit entry."""
    log.warning("liveness alert: %s", alert.message())
    try:
        library.audit("kiosk", "liveness_alert",
                      {"kiosk_id": alert.kiosk_id, "attempts": alert.attempts,
                       "window_s": alert.window_s, "matched_to": list(alert.claimed)})
    except FaceGuardError as error:
        log.warning("liveness alert not audited: %s", error)


def _access(gate: Gate | None, event: KioskEvent) -> tuple[Decision | None, str | None]:
    """What the access rules say of a recognised, live visit (stored with its event), or
    why they could not be asked. Unknown faces and suspected attacks never ask: the door
    stays shut."""
    if gate is None or event.person_id is None or event.attack:
        return None, None
    try:
        return gate.decide(event.person_id, event.timestamp, event.direction), None
    except FaceGuardError as error:
        log.warning("access rules not read for a visit of person %s: %s", event.person_id,
                    error)
        return None, str(error)


def _at_door(gate: Gate, event: KioskEvent, decision: Decision) -> KioskEvent:
    """Carry out the decision at the door: unlock, or "Access denied" with the reason."""
    assert event.person_id is not None
    try:
        result = gate.act(
            decision, event.person_id, event.person_name or "", event.timestamp,
            direction=event.direction, event_id=f"{event.kiosk_id}-{event.event_id}")
    except FaceGuardError as error:
        log.warning("door not operated for event %s: %s", event.event_id, error)
        return replace(event, door_reason=f"door fault: {error}")
    if not decision.allowed:
        return replace(event, door="denied", door_reason=decision.reason)
    if not (result.done or result.queued):
        log.warning("door did not open for event %s: %s", event.event_id, result.message)
        return replace(event, door_reason=f"door fault: {result.message}")
    return replace(event, door="unlocked", door_reason=decision.reason)
