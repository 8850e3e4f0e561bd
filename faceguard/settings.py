"""Typed application settings: one place for defaults, validation, schema migration and storage.

Settings live in ``<data_dir>/settings.json``. Loading never fails: a missing file gives the
defaults, and an unreadable file, a corrupt file or a bad value falls back to the default with a
warning logged. Unknown keys are ignored. Files from older schema versions are migrated on load.
Saving is atomic (temporary file in the same folder, fsync, rename).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faceguard.errors import FaceGuardError
from faceguard.paths import data_dir as default_data_dir
from faceguard.paths import make_private_dir

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"
SCHEMA_VERSION = 1

# Matching operating point. By default (match_threshold None) the threshold and margin come
# from the embedding model's calibration, recorded with the false-accept rate it was measured
# at in resources/models/manifest.json and MODEL_CARD.md. A number here overrides it.
DEFAULT_MATCH_THRESHOLD: float | None = None
DEFAULT_MATCH_MARGIN = 0.05
DEFAULT_THRESHOLD_FAR = 1e-3
DEFAULT_THRESHOLD_NOTE = "model calibration; see resources/models/MODEL_CARD.md"

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


def _check_str(value: Any, *, max_len: int = 256, allow_empty: bool = False) -> str | None:
    """Return a problem description for a bad string, or None when it is fine."""
    if not isinstance(value, str):
        return "must be text"
    if not allow_empty and not value.strip():
        return "must not be empty"
    if len(value) > max_len:
        return f"must be at most {max_len} characters"
    return None


def _check_float(value: Any, lo: float, hi: float, *, lo_open: bool = False) -> str | None:
    """Problem description for a number outside [lo, hi] (or (lo, hi])."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number"
    if not math.isfinite(value):
        return "must be a finite number"
    if value < lo or (lo_open and value == lo) or value > hi:
        left = "(" if lo_open else "["
        return f"must be in {left}{lo}, {hi}]"
    return None


def _check_int(value: Any, lo: int, hi: int) -> str | None:
    """Problem description for a non-integer or an integer outside [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be a whole number"
    if not lo <= value <= hi:
        return f"must be in [{lo}, {hi}]"
    return None


def _check_model_file(value: Any) -> str | None:
    """A model file is a plain file name inside the models folder."""
    problem = _check_str(value)
    if problem:
        return problem
    if Path(value).name != value or value in (".", ".."):
        return "must be a file name without a folder"
    return None


def _check_choice(value: Any, choices: tuple[str, ...]) -> str | None:
    """Problem description for a value that is not one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        return "must be one of " + ", ".join(choices)
    return None


def _check_hex(value: Any) -> str | None:
    """Empty, or bytes written as hex ("A0 01 01 A2")."""
    problem = _check_str(value, max_len=256, allow_empty=True)
    if problem or not value.strip():
        return problem
    try:
        bytes.fromhex(value.replace(" ", "").replace(":", ""))
    except ValueError:
        return "must be bytes in hex, e.g. 'A0 01 01 A2'"
    return None


def _check_pin_hash(value: Any) -> str | None:
    """The PIN hash is absent (no PIN) or non-empty text."""
    if value is None:
        return None
    return _check_str(value, max_len=1024)


# Pairs (part, whole): a vote needs at most as many frames as its window holds.
NOT_ABOVE = (("votes_required", "votes_window"),
             ("liveness_votes_required", "liveness_votes_window"))


def setting(default: Any, check: Callable[[Any], str | None], key: str, help: str,
            **field_options: Any) -> Any:
    """Declare one setting: its default, validator, dotted key (``faceguard config``) and help.

    The declaration is the only place these live: the dialog, ``faceguard config`` and the
    loader all read them from the field's metadata (see :data:`OPTIONS`).
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
        "kiosk-1", lambda v: _check_str(v, max_len=64), "kiosk.name",
        "Name of this kiosk (door) in the entry log.")
    source: str = setting(
        "0", lambda v: _check_str(v, max_len=1024), "kiosk.source",
        "Video source: camera index, video file, stream URL, image folder or 'demo'.")
    model_file: str = setting(
        DEFAULT_MODEL_FILE, _check_model_file, "recognition.model_file",
        "Embedding model file in resources/models.")
    match_threshold: float | None = setting(
        DEFAULT_MATCH_THRESHOLD, lambda v: None if v is None else _check_float(v, -1.0, 1.0),
        "recognition.threshold",
        "Similarity a face needs to be recognised; 'none' uses the model's calibration. "
        "Higher lets fewer strangers in and refuses more enrolled people.")
    match_margin: float = setting(
        DEFAULT_MATCH_MARGIN, lambda v: _check_float(v, 0.0, 2.0), "recognition.margin",
        "How far the best person must beat the runner-up.")
    threshold_far: float = setting(
        DEFAULT_THRESHOLD_FAR, lambda v: _check_float(v, 0.0, 1.0, lo_open=True),
        "recognition.threshold_far", "False-accept rate the threshold was calibrated for.")
    threshold_note: str = setting(
        DEFAULT_THRESHOLD_NOTE, lambda v: _check_str(v, max_len=1024, allow_empty=True),
        "recognition.threshold_note", "Where the threshold comes from.")
    min_face_px: int = setting(
        60, lambda v: _check_int(v, 16, 4096), "recognition.min_face_px",
        "Smallest face (pixels) that is detected and can count.")
    repeat_window_s: int = setting(
        300, lambda v: _check_int(v, 0, 86_400), "decisions.repeat_window_s",
        "Seconds in which the same person is not logged twice.")
    votes_required: int = setting(
        3, lambda v: _check_int(v, 1, 100), "decisions.votes_required",
        "Frames that must agree before a person is accepted ...")
    votes_window: int = setting(
        5, lambda v: _check_int(v, 1, 100), "decisions.votes_window",
        "... out of this many recent frames.")
    tracking: str = setting(
        "on", lambda v: _check_choice(v, ("on", "off")), "kiosk.tracking",
        "on: a face in view is followed from frame to frame by the detector's later stages "
        "(the full search runs every detect_interval frames); off: full search every frame.")
    detect_interval: int = setting(
        8, lambda v: _check_int(v, 1, 100), "kiosk.detect_interval",
        "With tracking on: frames between two full searches for new faces (1: every frame).")
    motion_threshold: float = setting(
        0.005, lambda v: _check_float(v, 0.0, 1.0), "kiosk.motion_threshold",
        "Share of the picture that must change before an empty scene is searched for faces "
        "(0: search every frame).")
    recheck_s: float = setting(
        1.0, lambda v: _check_float(v, 0.1, 60.0), "kiosk.recheck_s",
        "Seconds between two checks of a recognised face, so a swap of people is noticed.")
    pin_hash: str | None = setting(
        None, _check_pin_hash, "admin.pin_hash",
        "Legacy: the admin PIN now lives in the face library.", repr=False)
    admin_lock_s: int = setting(
        60, lambda v: _check_int(v, 10, 86_400), "admin.lock_s",
        "Seconds the admin screens stay locked after five wrong PINs.")
    backups_keep: int = setting(
        7, lambda v: _check_int(v, 0, 1000), "library.backups_keep",
        "Automatic daily backups kept in backups/ (0: none).")
    liveness_mode: str = setting(
        DEFAULT_LIVENESS_MODE, lambda v: _check_choice(v, LIVENESS_MODES), "liveness.mode",
        "off, observe (scored and logged, never blocks) or enforce (refuses suspected "
        "photos and screens).")
    liveness_threshold: float = setting(
        DEFAULT_LIVENESS_THRESHOLD, lambda v: _check_float(v, 0.0, 1.0), "liveness.threshold",
        "Live probability a frame needs. Higher refuses more attacks and more real people.")
    liveness_votes_required: int = setting(
        2, lambda v: _check_int(v, 1, 100), "liveness.votes_required",
        "Live scored frames needed ...")
    liveness_votes_window: int = setting(
        3, lambda v: _check_int(v, 1, 100), "liveness.votes_window",
        "... of the counted face's last scored frames.")
    liveness_alert_attempts: int = setting(
        3, lambda v: _check_int(v, 1, 1000), "liveness.alert_attempts",
        "Suspected attacks within the alert window that raise an admin alert.")
    liveness_alert_window_s: int = setting(
        300, lambda v: _check_int(v, 1, 86_400), "liveness.alert_window_s",
        "Seconds of the alert window.")
    retention_events_days: int = setting(
        90, lambda v: _check_int(v, 0, 36_500), "retention.events_days",
        "Days the entry log keeps each event (0: forever). Older events are deleted by "
        "the kiosk's daily purge and 'faceguard purge'.")
    retention_unknown_crops_hours: int = setting(
        24, lambda v: _check_int(v, 0, 876_000), "retention.unknown_crops_hours",
        "Hours the face image of a 'not recognised' event is kept (0: as long as the event).")
    retention_audit_days: int = setting(
        730, lambda v: _check_int(v, 0, 36_500), "retention.audit_days",
        "Days the admin audit log keeps each entry (0: forever).")
    retention_contact: str = setting(
        "the site administrator", lambda v: _check_str(v, max_len=256), "retention.contact",
        "Who people ask about their data (printed on the retention notice).")
    consent_required: str = setting(
        "auto", lambda v: _check_choice(v, ("auto", "on", "off")), "consent.required",
        "on: a new person is enrolled only with a consent record (who gave it, for which "
        "notice); off: not needed; auto: on for libraries created since consent records "
        "exist, off for older ones.")
    admin_session_s: int = setting(
        120, lambda v: _check_int(v, 0, 3600), "admin.session_s",
        "Seconds an admin account stays signed in to the window after its last action "
        "(0: the PIN is asked for every action).")
    fleet_interval_s: float = setting(
        30.0, lambda v: _check_float(v, 1.0, 3600.0), "fleet.interval_s",
        "Fleet: seconds between full sync rounds (local entries go up within about a second, "
        "the server's changes come down at once when it notifies).")
    fleet_backoff_max_s: float = setting(
        60.0, lambda v: _check_float(v, 1.0, 3600.0), "fleet.backoff_max_s",
        "Fleet: longest wait between tries while the server is unreachable (from 1 s, "
        "doubling).")
    door_driver: str = setting(
        "simulated", lambda v: _check_choice(v, DOOR_DRIVERS), "door.driver",
        "What opens the door: simulated (shown only), serial (USB relay), webhook, mqtt, gpio.")
    door_lock_type: str = setting(
        "fail-secure", lambda v: _check_choice(v, LOCK_TYPES), "door.lock_type",
        "fail-secure (strike: stays locked without power) or fail-safe (maglock: unlocks "
        "without power, and when FaceGuard exits).")
    door_pulse_s: float = setting(
        3.0, lambda v: _check_float(v, 0.1, 60.0), "door.pulse_s",
        "Seconds the door stays unlocked after an unlock.")
    door_held_open_s: float = setting(
        30.0, lambda v: _check_float(v, 1.0, 3600.0), "door.held_open_s",
        "Seconds the door may stay open (door contact) before the held-open alarm.")
    door_webhook_url: str = setting(
        "", lambda v: _check_str(v, max_len=2048, allow_empty=True), "door.webhook.url",
        "Webhook driver: the http(s) address each event is POSTed to.")
    door_webhook_secret: str = setting(
        "", lambda v: _check_str(v, max_len=1024, allow_empty=True), "door.webhook.secret",
        "Webhook driver: shared secret for the X-FaceGuard-Signature HMAC-SHA256.", repr=False)
    door_webhook_timeout_s: float = setting(
        5.0, lambda v: _check_float(v, 0.1, 120.0), "door.webhook.timeout_s",
        "Webhook driver: seconds to wait for an answer before trying again later.")
    door_webhook_ca_file: str = setting(
        "", lambda v: _check_str(v, max_len=1024, allow_empty=True), "door.webhook.ca_file",
        "Webhook driver: extra CA certificate file (PEM) for a private https endpoint.")
    door_serial_port: str = setting(
        "/dev/ttyUSB0", lambda v: _check_str(v, max_len=256), "door.serial.port",
        "Serial driver: the relay board's port (/dev/ttyUSB0, COM3).")
    door_serial_preset: str = setting(
        "lcus-1", lambda v: _check_choice(v, SERIAL_PRESETS), "door.serial.preset",
        "Serial driver: the board's commands (lcus-1: A0 01 01 A2 / A0 01 00 A1), or custom.")
    door_serial_on: str = setting(
        "", lambda v: _check_str(v, max_len=256, allow_empty=True), "door.serial.on",
        "Serial driver, preset custom: bytes (hex) that energise the relay.")
    door_serial_off: str = setting(
        "", lambda v: _check_str(v, max_len=256, allow_empty=True), "door.serial.off",
        "Serial driver, preset custom: bytes (hex) that de-energise the relay.")
    door_serial_input_open: str = setting(
        "", _check_hex, "door.serial.input_open",
        "Serial driver: bytes (hex) the board sends when the door contact opens (empty: none).")
    door_serial_input_closed: str = setting(
        "", _check_hex, "door.serial.input_closed",
        "Serial driver: bytes (hex) the board sends when the door contact closes.")
    door_serial_input_exit: str = setting(
        "", _check_hex, "door.serial.input_exit",
        "Serial driver: bytes (hex) the board sends when the exit button is pressed.")
    door_mqtt_host: str = setting(
        "", lambda v: _check_str(v, max_len=256, allow_empty=True), "door.mqtt.host",
        "MQTT driver: the broker's host name or address.")
    door_mqtt_port: int = setting(
        1883, lambda v: _check_int(v, 1, 65_535), "door.mqtt.port", "MQTT driver: broker port.")
    door_mqtt_prefix: str = setting(
        "faceguard", lambda v: _check_str(v, max_len=128), "door.mqtt.prefix",
        "MQTT driver: topic prefix (topics are PREFIX/<kiosk name>/...).")
    door_mqtt_user: str = setting(
        "", lambda v: _check_str(v, max_len=256, allow_empty=True), "door.mqtt.user",
        "MQTT driver: user name (empty: none).")
    door_mqtt_password: str = setting(
        "", lambda v: _check_str(v, max_len=1024, allow_empty=True), "door.mqtt.password",
        "MQTT driver: password.", repr=False)
    door_mqtt_tls: str = setting(
        "off", lambda v: _check_choice(v, ("off", "on")), "door.mqtt.tls",
        "MQTT driver: on uses TLS with certificate checks.")
    door_mqtt_remote_unlock: str = setting(
        "off", lambda v: _check_choice(v, ("off", "on")), "door.mqtt.remote_unlock",
        "MQTT driver: on lets Home Assistant's lock (PREFIX/DOOR/lock/set UNLOCK) open the "
        "door; off: such a request is refused. Both are audited.")
    door_mqtt_ca_file: str = setting(
        "", lambda v: _check_str(v, max_len=1024, allow_empty=True), "door.mqtt.ca_file",
        "MQTT driver: CA certificate file (PEM) for TLS (empty: the system's).")
    door_gpio_chip: str = setting(
        "/dev/gpiochip0", lambda v: _check_str(v, max_len=256), "door.gpio.chip",
        "GPIO driver: the GPIO chip.")
    door_gpio_line: int = setting(
        17, lambda v: _check_int(v, 0, 4095), "door.gpio.line",
        "GPIO driver: the line (pin offset) driving the relay.")
    door_gpio_contact_line: int = setting(
        -1, lambda v: _check_int(v, -1, 4095), "door.gpio.contact_line",
        "GPIO driver: input line of the door contact (active = open; -1: none).")
    door_gpio_exit_line: int = setting(
        -1, lambda v: _check_int(v, -1, 4095), "door.gpio.exit_line",
        "GPIO driver: input line of the exit button (active = pressed; -1: none).")
    access_timezone: str = setting(
        "", lambda v: _check_str(v, max_len=64, allow_empty=True), "access.timezone",
        "Time zone of the access hours (e.g. Europe/Berlin; empty: the system's).")
    access_without_rules: str = setting(
        "allow", lambda v: _check_choice(v, ("allow", "deny")), "access.without_rules",
        "While no access group exists: allow every recognised person, or deny.")
    access_antipassback: str = setting(
        "off", lambda v: _check_choice(v, ("off", "on")), "access.antipassback",
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


def _validators() -> dict[str, Callable[[Any], str | None]]:
    """Field name -> validator, from the declarations."""
    return {f.name: f.metadata["check"] for f in dataclasses.fields(Settings)
            if "check" in f.metadata}


def _migrate_0_to_1(data: dict[str, Any]) -> dict[str, Any]:
    """Unversioned files: ``threshold``/``margin``/``camera`` keys, camera index as a number."""
    renames = {"threshold": "match_threshold", "margin": "match_margin", "camera": "source"}
    for old, new in renames.items():
        if old in data and new not in data:
            data[new] = data.pop(old)
    source = data.get("source")
    if isinstance(source, int) and not isinstance(source, bool):
        data["source"] = str(source)
    return data


# from-version -> function producing the next version's mapping.
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _migrate_0_to_1}


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a settings mapping from its schema version up to :data:`SCHEMA_VERSION`.

    A file without ``schema_version`` is version 0. A newer version than this program knows is
    read as far as possible (unknown keys are ignored) with a warning.
    """
    version = data.get("schema_version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        log.warning("Settings schema_version %r is invalid; reading as the current one.", version)
        version = SCHEMA_VERSION
    if version > SCHEMA_VERSION:
        log.warning(
            "Settings were written by a newer FaceGuard (schema %d, this one knows %d); "
            "reading what is understood.",
            version,
            SCHEMA_VERSION,
        )
        version = SCHEMA_VERSION
    while version < SCHEMA_VERSION:
        data = _MIGRATIONS[version](data)
        version += 1
        log.info("Migrated settings to schema version %d.", version)
    data["schema_version"] = SCHEMA_VERSION
    return data


def settings_path(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of the settings file inside the data dir (see :func:`faceguard.paths.data_dir`)."""
    return default_data_dir(data_dir) / SETTINGS_FILE


def load_settings(data_dir: str | os.PathLike[str] | None = None) -> Settings:
    """Load settings from ``<data_dir>/settings.json``; defaults (with a warning) on any problem.

    The file is never modified by loading.
    """
    path = settings_path(data_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings()
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("Cannot read settings file %s (%s); using defaults.", path, exc)
        return Settings()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        log.warning("Settings file %s is corrupt (%s); using defaults.", path, exc)
        return Settings()
    if not isinstance(raw, dict):
        log.warning("Settings file %s does not hold a JSON object; using defaults.", path)
        return Settings()
    return Settings.from_dict(raw)


def save_settings(settings: Settings, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write settings atomically to ``<data_dir>/settings.json`` and return the path.

    The data folder is created if needed. On failure the previous file is left intact and a
    :class:`SettingsError` says why.
    """
    path = settings_path(data_dir)
    text = json.dumps(settings.to_dict(), indent=2, sort_keys=True) + "\n"
    tmp_name: str | None = None
    try:
        if not path.parent.is_dir():
            make_private_dir(path.parent)
        fd, tmp_name = tempfile.mkstemp(prefix=".settings-", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SettingsError(f"Cannot save settings to {path}: {reason}.") from exc
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
    return path
