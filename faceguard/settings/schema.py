"""The :class:`Settings` dataclass: every setting declared once, and the rules between them.

Each field is declared with :func:`setting` (default, validator from
:mod:`faceguard.settings.checks`, dotted key, help text); the loader, the settings dialog and
``faceguard config`` all read those declarations. The long field list is declarative (one
``setting(...)`` per value), so it stays in one class in one file.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from faceguard.errors import FaceGuardError
from faceguard.settings.checks import (
    check_choice,
    check_float,
    check_hex,
    check_int,
    check_model_file,
    check_pin_hash,
    check_str,
)
from faceguard.settings.migrations import SCHEMA_VERSION, migrate

log = logging.getLogger(__name__)

# Matching operating point. By default (match_threshold None) the threshold and margin come
# from the embedding model's calibration, recorded with the false-accept rate it was measured
# at in resources/models/manifest.json and MODEL_CARD.md. A number here overrides it.
DEFAULT_MATCH_THRESHOLD: float | None = None
DEFAULT_MATCH_MARGIN = 0.05
DEFAULT_THRESHOLD_FAR = 1e-3
DEFAULT_THRESHOLD_NOTE = "model calibration; see resources/models/MODEL_CARD.md"
# How strict the calibrated threshold is: the false-accept rate per (stranger, enrolled person)
# comparison each level stands for, read from the model's calibration table (manifest
# "thresholds"). Stricter lets fewer strangers in and refuses more enrolled people.
STRICTNESS_FAR = {"standard": 1e-3, "strict": 1e-4, "very-strict": 1e-5}
DEFAULT_STRICTNESS = "standard"

# The kiosk's visits (faceguard.kiosk.decisions) and tracks (faceguard.kiosk.tracking).
DEFAULT_VISIT_GAP_S = 10.0  # seconds without a face that end a visit
DEFAULT_UNKNOWN_COOLDOWN_S = 60  # seconds between two "not recognised" events
DEFAULT_TRACK_GAP_FRAMES = 4  # frames a track may go without its face and be taken up again

DEFAULT_MODEL_FILE = "lite_mobilefacenet_96.onnx"

# Passive liveness (resources/models/LIVENESS_MODEL_CARD.md, "FaceGuard's measurement").
# off: not computed; observe: scored, logged and shown, never blocks; enforce: a visit whose
# frames are not live enough is refused as a suspected presentation attack.
# The default is observe because, measured at the default threshold, 15% of live faces are
# refused (BPCER: 39 of 257 LFW photos, 2 of 13 demo photos; APCER 1.2% on synthetic attacks):
# not "rarely". 0.5 is upstream's arg-max rule, with the lowest APCER where ACER is flat.
LIVENESS_MODES = ("off", "observe", "enforce")
DEFAULT_LIVENESS_MODE = "observe"
DEFAULT_LIVENESS_THRESHOLD = 0.5

# Doors and access rules (faceguard.core.door, faceguard.core.access).
DOOR_DRIVERS = ("simulated", "serial", "webhook", "mqtt", "gpio")
LOCK_TYPES = ("fail-secure", "fail-safe")
SERIAL_PRESETS = ("lcus-1", "lcus-2-ch1", "lcus-2-ch2", "kmtronic-1", "custom")


class SettingsError(FaceGuardError):
    """Settings have an invalid value or cannot be saved."""


# Pairs (part, whole): a vote needs at most as many frames as its window holds.
NOT_ABOVE = (("votes_required", "votes_window"),
             ("liveness_votes_required", "liveness_votes_window"))


def setting(default: Any, check: Callable[[Any], str | None], key: str, help: str,
            **field_options: Any) -> Any:
    """Declare one setting: its default, validator, dotted key (``faceguard config``) and help.

    The declaration is the only place these live: the dialog, ``faceguard config`` and the
    loader all read them from the field's metadata (see :data:`faceguard.settings.options.OPTIONS`).
    """
    return field(default=default, metadata={"check": check, "key": key, "help": help},
                 **field_options)


@dataclass(frozen=True)
class Settings:
    """All user-adjustable settings. Immutable: use :meth:`replace` to change values.

    ``match_threshold`` and ``match_margin`` form the open-set operating point: a face is
    recognised when its best person's cosine similarity is at least the threshold and beats
    the next person by at least the margin. ``threshold_far`` is the false-accept rate the
    threshold was calibrated for, ``threshold_note`` says where that number comes from.
    A person is accepted when ``votes_required`` of the last ``votes_window`` frames agree;
    the same person is not logged twice within ``repeat_window_s`` seconds.
    ``pin_hash`` is only read from older files: the admin PIN lives in the face library.
    """

    schema_version: int = SCHEMA_VERSION
    kiosk_name: str = setting(
        "kiosk-1", lambda v: check_str(v, max_len=64), "kiosk.name",
        "Name of this kiosk (door) in the entry log.")
    source: str = setting(
        "0", lambda v: check_str(v, max_len=1024), "kiosk.source",
        "Video source: camera index, video file, stream URL, image folder or 'demo'.")
    model_file: str = setting(
        DEFAULT_MODEL_FILE, check_model_file, "recognition.model_file",
        "Embedding model file in resources/models.")
    match_threshold: float | None = setting(
        DEFAULT_MATCH_THRESHOLD, lambda v: None if v is None else check_float(v, -1.0, 1.0),
        "recognition.threshold",
        "Similarity a face needs to be recognised; 'none' uses the model's calibration. "
        "Higher lets fewer strangers in and refuses more enrolled people.")
    match_strictness: str = setting(
        DEFAULT_STRICTNESS, lambda v: check_choice(v, tuple(STRICTNESS_FAR)),
        "recognition.strictness",
        "Which calibrated threshold is used when recognition.threshold is none: standard, "
        "strict or very-strict (a stranger outscores about 1 in 1,000, 10,000 or 100,000 "
        "enrolled people; calibrated on UTKFace). Stricter refuses more enrolled people.")
    match_margin: float = setting(
        DEFAULT_MATCH_MARGIN, lambda v: check_float(v, 0.0, 2.0), "recognition.margin",
        "How far the best person must beat the runner-up.")
    threshold_far: float = setting(
        DEFAULT_THRESHOLD_FAR, lambda v: check_float(v, 0.0, 1.0, lo_open=True),
        "recognition.threshold_far", "False-accept rate the threshold was calibrated for.")
    threshold_note: str = setting(
        DEFAULT_THRESHOLD_NOTE, lambda v: check_str(v, max_len=1024, allow_empty=True),
        "recognition.threshold_note", "Where the threshold comes from.")
    min_face_px: int = setting(
        60, lambda v: check_int(v, 16, 4096), "recognition.min_face_px",
        "Smallest face (pixels) that is detected and can count.")
    repeat_window_s: int = setting(
        300, lambda v: check_int(v, 0, 86_400), "decisions.repeat_window_s",
        "Seconds in which the same person is not logged twice.")
    votes_required: int = setting(
        3, lambda v: check_int(v, 1, 100), "decisions.votes_required",
        "Frames that must agree before a person is accepted ...")
    votes_window: int = setting(
        5, lambda v: check_int(v, 1, 100), "decisions.votes_window",
        "... out of this many recent frames.")
    visit_gap_s: float = setting(
        DEFAULT_VISIT_GAP_S, lambda v: check_float(v, 1.0, 600.0), "decisions.visit_gap_s",
        "Seconds without a face that end a visit: someone back in view sooner is the same "
        "visit (logged once). Longer suits a door where people linger or look away.")
    unknown_cooldown_s: int = setting(
        DEFAULT_UNKNOWN_COOLDOWN_S, lambda v: check_int(v, 0, 86_400),
        "decisions.unknown_cooldown_s",
        "Seconds between two 'not recognised' events, however many visits (0: one per "
        "visit). Longer keeps a busy public door's log short.")
    tracking: str = setting(
        "on", lambda v: check_choice(v, ("on", "off")), "kiosk.tracking",
        "on: a face in view is followed from frame to frame by the detector's later stages "
        "(the full search runs every detect_interval frames); off: full search every frame.")
    detect_interval: int = setting(
        8, lambda v: check_int(v, 1, 100), "kiosk.detect_interval",
        "With tracking on: frames between two full searches for new faces (1: every frame).")
    motion_threshold: float = setting(
        0.005, lambda v: check_float(v, 0.0, 1.0), "kiosk.motion_threshold",
        "Share of the picture that must change before an empty scene is searched for faces "
        "(0: search every frame).")
    recheck_s: float = setting(
        1.0, lambda v: check_float(v, 0.1, 60.0), "kiosk.recheck_s",
        "Seconds between two checks of a recognised face, so a swap of people is noticed.")
    track_gap_frames: int = setting(
        DEFAULT_TRACK_GAP_FRAMES, lambda v: check_int(v, 0, 60), "kiosk.track_gap_frames",
        "Frames a face may go undetected (a turned head, someone walking past) and keep its "
        "track and its decision; more suits a door where faces are often hidden briefly.")
    pin_hash: str | None = setting(
        None, check_pin_hash, "admin.pin_hash",
        "Legacy: the admin PIN now lives in the face library.", repr=False)
    admin_lock_s: int = setting(
        60, lambda v: check_int(v, 10, 86_400), "admin.lock_s",
        "Seconds the admin screens stay locked after five wrong PINs.")
    backups_keep: int = setting(
        7, lambda v: check_int(v, 0, 1000), "library.backups_keep",
        "Automatic daily backups kept in backups/ (0: none).")
    liveness_mode: str = setting(
        DEFAULT_LIVENESS_MODE, lambda v: check_choice(v, LIVENESS_MODES), "liveness.mode",
        "off, observe (scored and logged, never blocks) or enforce (refuses suspected "
        "photos and screens).")
    liveness_threshold: float = setting(
        DEFAULT_LIVENESS_THRESHOLD, lambda v: check_float(v, 0.0, 1.0), "liveness.threshold",
        "Live probability a frame needs. Higher refuses more attacks and more real people.")
    liveness_votes_required: int = setting(
        2, lambda v: check_int(v, 1, 100), "liveness.votes_required",
        "Live scored frames needed ...")
    liveness_votes_window: int = setting(
        3, lambda v: check_int(v, 1, 100), "liveness.votes_window",
        "... of the counted face's last scored frames.")
    liveness_alert_attempts: int = setting(
        3, lambda v: check_int(v, 1, 1000), "liveness.alert_attempts",
        "Suspected attacks within the alert window that raise an admin alert.")
    liveness_alert_window_s: int = setting(
        300, lambda v: check_int(v, 1, 86_400), "liveness.alert_window_s",
        "Seconds of the alert window.")
    retention_events_days: int = setting(
        90, lambda v: check_int(v, 0, 36_500), "retention.events_days",
        "Days the entry log keeps each event (0: forever). Older events are deleted by "
        "the kiosk's daily purge and 'faceguard purge'.")
    retention_unknown_crops_hours: int = setting(
        24, lambda v: check_int(v, 0, 876_000), "retention.unknown_crops_hours",
        "Hours the face image of a 'not recognised' event is kept (0: as long as the event).")
    retention_audit_days: int = setting(
        730, lambda v: check_int(v, 0, 36_500), "retention.audit_days",
        "Days the admin audit log keeps each entry (0: forever).")
    retention_contact: str = setting(
        "the site administrator", lambda v: check_str(v, max_len=256), "retention.contact",
        "Who people ask about their data (printed on the retention notice).")
    consent_required: str = setting(
        "auto", lambda v: check_choice(v, ("auto", "on", "off")), "consent.required",
        "on: a new person is enrolled only with a consent record (who gave it, for which "
        "notice); off: not needed; auto: on for libraries created since consent records "
        "exist, off for older ones.")
    admin_session_s: int = setting(
        120, lambda v: check_int(v, 0, 3600), "admin.session_s",
        "Seconds an admin account stays signed in to the window after its last action "
        "(0: the PIN is asked for every action).")
    fleet_interval_s: float = setting(
        30.0, lambda v: check_float(v, 1.0, 3600.0), "fleet.interval_s",
        "Fleet: seconds between full sync rounds (local entries go up within about a second, "
        "the server's changes come down at once when it notifies).")
    fleet_backoff_max_s: float = setting(
        60.0, lambda v: check_float(v, 1.0, 3600.0), "fleet.backoff_max_s",
        "Fleet: longest wait between tries while the server is unreachable (from 1 s, "
        "doubling).")
    door_driver: str = setting(
        "simulated", lambda v: check_choice(v, DOOR_DRIVERS), "door.driver",
        "What opens the door: simulated (shown only), serial (USB relay), webhook, mqtt, gpio.")
    door_lock_type: str = setting(
        "fail-secure", lambda v: check_choice(v, LOCK_TYPES), "door.lock_type",
        "fail-secure (strike: stays locked without power) or fail-safe (maglock: unlocks "
        "without power, and when FaceGuard exits).")
    door_pulse_s: float = setting(
        3.0, lambda v: check_float(v, 0.1, 60.0), "door.pulse_s",
        "Seconds the door stays unlocked after an unlock.")
    door_held_open_s: float = setting(
        30.0, lambda v: check_float(v, 1.0, 3600.0), "door.held_open_s",
        "Seconds the door may stay open (door contact) before the held-open alarm.")
    door_webhook_url: str = setting(
        "", lambda v: check_str(v, max_len=2048, allow_empty=True), "door.webhook.url",
        "Webhook driver: the http(s) address each event is POSTed to.")
    door_webhook_secret: str = setting(
        "", lambda v: check_str(v, max_len=1024, allow_empty=True), "door.webhook.secret",
        "Webhook driver: shared secret for the X-FaceGuard-Signature HMAC-SHA256.", repr=False)
    door_webhook_timeout_s: float = setting(
        5.0, lambda v: check_float(v, 0.1, 120.0), "door.webhook.timeout_s",
        "Webhook driver: seconds to wait for an answer before trying again later.")
    door_webhook_ca_file: str = setting(
        "", lambda v: check_str(v, max_len=1024, allow_empty=True), "door.webhook.ca_file",
        "Webhook driver: extra CA certificate file (PEM) for a private https endpoint.")
    door_serial_port: str = setting(
        "/dev/ttyUSB0", lambda v: check_str(v, max_len=256), "door.serial.port",
        "Serial driver: the relay board's port (/dev/ttyUSB0, COM3).")
    door_serial_preset: str = setting(
        "lcus-1", lambda v: check_choice(v, SERIAL_PRESETS), "door.serial.preset",
        "Serial driver: the board's commands (lcus-1: A0 01 01 A2 / A0 01 00 A1), or custom.")
    door_serial_on: str = setting(
        "", lambda v: check_str(v, max_len=256, allow_empty=True), "door.serial.on",
        "Serial driver, preset custom: bytes (hex) that energise the relay.")
    door_serial_off: str = setting(
        "", lambda v: check_str(v, max_len=256, allow_empty=True), "door.serial.off",
        "Serial driver, preset custom: bytes (hex) that de-energise the relay.")
    door_serial_input_open: str = setting(
        "", check_hex, "door.serial.input_open",
        "Serial driver: bytes (hex) the board sends when the door contact opens (empty: none).")
    door_serial_input_closed: str = setting(
        "", check_hex, "door.serial.input_closed",
        "Serial driver: bytes (hex) the board sends when the door contact closes.")
    door_serial_input_exit: str = setting(
        "", check_hex, "door.serial.input_exit",
        "Serial driver: bytes (hex) the board sends when the exit button is pressed.")
    door_mqtt_host: str = setting(
        "", lambda v: check_str(v, max_len=256, allow_empty=True), "door.mqtt.host",
        "MQTT driver: the broker's host name or address.")
    door_mqtt_port: int = setting(
        1883, lambda v: check_int(v, 1, 65_535), "door.mqtt.port", "MQTT driver: broker port.")
    door_mqtt_prefix: str = setting(
        "faceguard", lambda v: check_str(v, max_len=128), "door.mqtt.prefix",
        "MQTT driver: topic prefix (topics are PREFIX/<kiosk name>/...).")
    door_mqtt_user: str = setting(
        "", lambda v: check_str(v, max_len=256, allow_empty=True), "door.mqtt.user",
        "MQTT driver: user name (empty: none).")
    door_mqtt_password: str = setting(
        "", lambda v: check_str(v, max_len=1024, allow_empty=True), "door.mqtt.password",
        "MQTT driver: password.", repr=False)
    door_mqtt_tls: str = setting(
        "off", lambda v: check_choice(v, ("off", "on")), "door.mqtt.tls",
        "MQTT driver: on uses TLS with certificate checks.")
    door_mqtt_remote_unlock: str = setting(
        "off", lambda v: check_choice(v, ("off", "on")), "door.mqtt.remote_unlock",
        "MQTT driver: on lets Home Assistant's lock (PREFIX/DOOR/lock/set UNLOCK) open the "
        "door; off: such a request is refused. Both are audited.")
    door_mqtt_ca_file: str = setting(
        "", lambda v: check_str(v, max_len=1024, allow_empty=True), "door.mqtt.ca_file",
        "MQTT driver: CA certificate file (PEM) for TLS (empty: the system's).")
    door_gpio_chip: str = setting(
        "/dev/gpiochip0", lambda v: check_str(v, max_len=256), "door.gpio.chip",
        "GPIO driver: the GPIO chip.")
    door_gpio_line: int = setting(
        17, lambda v: check_int(v, 0, 4095), "door.gpio.line",
        "GPIO driver: the line (pin offset) driving the relay.")
    door_gpio_contact_line: int = setting(
        -1, lambda v: check_int(v, -1, 4095), "door.gpio.contact_line",
        "GPIO driver: input line of the door contact (active = open; -1: none).")
    door_gpio_exit_line: int = setting(
        -1, lambda v: check_int(v, -1, 4095), "door.gpio.exit_line",
        "GPIO driver: input line of the exit button (active = pressed; -1: none).")
    access_timezone: str = setting(
        "", lambda v: check_str(v, max_len=64, allow_empty=True), "access.timezone",
        "Time zone of the access hours (e.g. Europe/Berlin; empty: the system's).")
    access_without_rules: str = setting(
        "allow", lambda v: check_choice(v, ("allow", "deny")), "access.without_rules",
        "While no access group exists: allow every recognised person, or deny.")
    access_antipassback: str = setting(
        "off", lambda v: check_choice(v, ("off", "on")), "access.antipassback",
        "on: after an IN the next passage must be an OUT (an IN and an OUT kiosk).")

    def __post_init__(self) -> None:
        """Reject invalid values with a user-facing message."""
        if self.schema_version != SCHEMA_VERSION:
            raise SettingsError(f"Setting schema_version must be {SCHEMA_VERSION}.")
        for name, check in _validators().items():
            problem = check(getattr(self, name))
            if problem:
                raise SettingsError(f"Setting {name} {problem} (got {getattr(self, name)!r}).")
        for part, whole in NOT_ABOVE:
            if getattr(self, part) > getattr(self, whole):
                raise SettingsError(f"Setting {part} ({getattr(self, part)}) must not exceed "
                                    f"{whole} ({getattr(self, whole)}).")
        # Floats given as whole numbers in JSON ("threshold": 1) are kept as floats.
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if "float" in str(item.type) and isinstance(value, int):
                object.__setattr__(self, item.name, float(value))

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed (validated; raises SettingsError)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable mapping of every setting."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Settings:
        """Build settings from a loaded mapping: migrate, drop unknown keys, default bad values.

        Every problem is logged as a warning; this never raises.
        """
        data = migrate(dict(raw))
        known = {f.name for f in dataclasses.fields(cls)} - {"schema_version"}
        for key in sorted(set(data) - known - {"schema_version"}):
            log.warning("Ignoring unknown setting %r.", key)
        values: dict[str, Any] = {}
        for name in sorted(known & set(data)):
            problem = _validators()[name](data[name])
            if problem:
                log.warning("Setting %s %s (got %r); using the default.", name, problem, data[name])
            else:
                values[name] = data[name]
        defaults = cls()
        for part, whole in NOT_ABOVE:
            required = values.get(part, getattr(defaults, part))
            window = values.get(whole, getattr(defaults, whole))
            if required > window:
                log.warning("Setting %s (%s) exceeds %s (%s); using the defaults.",
                            part, required, whole, window)
                values.pop(part, None)
                values.pop(whole, None)
        return cls(**values)



def _validators() -> dict[str, Callable[[Any], str | None]]:
    """Field name -> validator, from the declarations."""
    return {f.name: f.metadata["check"] for f in dataclasses.fields(Settings)
            if "check" in f.metadata}
