"""Door drivers behind one interface (:class:`DoorDriver`), chosen by ``door.driver``.

``make_driver(settings, outbox)`` builds the configured one; see :mod:`.base` for the lock
types and what the relay does when FaceGuard exits, :mod:`.outbox` for delivery.
"""

from __future__ import annotations

from faceguard.core.door.base import (
    DRIVERS,
    DoorDriver,
    DoorError,
    DoorEvent,
    DoorNotice,
    DoorResult,
    LockType,
    new_event_id,
)
from faceguard.core.door.outbox import MemoryOutbox, Outbox
from faceguard.settings import Settings

__all__ = ["DRIVERS", "DoorDriver", "DoorError", "DoorEvent", "DoorNotice", "DoorResult",
           "LockType", "MemoryOutbox", "Outbox", "make_driver", "new_event_id"]


def make_driver(settings: Settings, outbox: Outbox | None = None) -> DoorDriver:
    """The driver ``settings.door_driver`` names, set up from the ``door.*`` settings.

    ``outbox`` keeps the webhook's and MQTT's messages (pass the library's
    :class:`~faceguard.library.rules.LibraryOutbox`; in memory otherwise). DoorError (one
    line, what to fix) when the driver cannot start.
    """
    door, kind = settings.kiosk_name, settings.door_driver
    lock, pulse = LockType(settings.door_lock_type), settings.door_pulse_s
    if kind == "simulated":
        from faceguard.core.door.simulated import SimulatedDoor

        return SimulatedDoor(door, lock, pulse)
    if kind == "serial":
        from faceguard.core.door.serial_relay import (
            SerialRelayDoor,
            input_patterns,
            preset_commands,
        )

        on, off, baud = preset_commands(settings.door_serial_preset, settings.door_serial_on,
                                        settings.door_serial_off)
        inputs = input_patterns(settings.door_serial_input_open,
                                settings.door_serial_input_closed,
                                settings.door_serial_input_exit)
        return SerialRelayDoor(door, settings.door_serial_port, on, off, baud=baud,
                               lock_type=lock, pulse_s=pulse, inputs=inputs)
    if kind == "webhook":
        from faceguard.core.door.webhook import WebhookDoor

        return WebhookDoor(door, settings.door_webhook_url, settings.door_webhook_secret,
                           outbox=outbox, timeout_s=settings.door_webhook_timeout_s,
                           ca_file=settings.door_webhook_ca_file, lock_type=lock,
                           pulse_s=pulse)
    if kind == "mqtt":
        from faceguard.core.door.mqtt import MqttDoor

        return MqttDoor(door, settings.door_mqtt_host, settings.door_mqtt_port,
                        prefix=settings.door_mqtt_prefix, username=settings.door_mqtt_user,
                        password=settings.door_mqtt_password,
                        tls=settings.door_mqtt_tls == "on", ca_file=settings.door_mqtt_ca_file,
                        outbox=outbox, lock_type=lock, pulse_s=pulse)
    if kind == "gpio":
        from faceguard.core.door.gpio import GpioDoor

        return GpioDoor(door, settings.door_gpio_chip, settings.door_gpio_line, lock, pulse,
                        contact_line=settings.door_gpio_contact_line,
                        exit_line=settings.door_gpio_exit_line)
    raise DoorError(f"unknown door driver {kind!r}; one of {', '.join(DRIVERS)}")
