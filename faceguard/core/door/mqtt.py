"""MQTT (paho-mqtt): events and lock commands out, door contact and exit button in, and Home
Assistant discovery so the kiosk shows up as a lock, a door sensor and a "last person" sensor.

Topics (``P`` = ``door.mqtt.prefix``, ``D`` = the door, i.e. ``kiosk.name``):

- ``P/D/event``: every event as JSON (QoS 1, through the outbox);
- ``P/D/command``: lock commands for an actuator (``{"event_id", "command": "unlock",
  "pulse_s", "expires"}``; QoS 1, through the outbox);
- ``P/D/lock/state``: ``LOCKED`` / ``UNLOCKED`` (retained); ``P/D/availability``:
  ``online`` / ``offline`` (retained; ``offline`` is the last will, so a crash shows);
- in: ``P/D/contact`` (``open`` / ``closed``), ``P/D/exit_button`` (any payload),
  ``P/D/lock/set`` (Home Assistant's lock button: passed to the kiosk as ``remote_unlock``,
  which decides; the driver never opens the door on its own for it).

Each outbox message is published once per connection lifetime and kept until its PUBACK;
paho re-sends an unacknowledged one (flagged DUP) after a reconnect, so a broker that dies
(even ``kill -9``) loses nothing. After a *re*connect the outbox waits ``settle_s`` before it
sends what was queued meanwhile: a broker that restarted has forgotten every subscription, and
the subscribers (Home Assistant, an actuator) reconnect at about the same moment as the kiosk;
a message the broker accepts before they have subscribed again reaches nobody. Discovery
configs go under ``homeassistant/``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
import threading
from typing import Any

from faceguard.core.door.base import DoorDriver, DoorError, DoorEvent, DoorResult, LockType
from faceguard.core.door.outbox import DeliveryError, Item, MemoryOutbox, Outbox, Sender

log = logging.getLogger(__name__)
RECONNECT_SETTLE_S = 2.0  # after a reconnect, before the queued messages go out

DISCOVERY_PREFIX = "homeassistant"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_") or "door"


class MqttDoor(DoorDriver):
    """Publishes to and listens on an MQTT broker (see the module notes)."""

    kind = "mqtt"

    def __init__(self, door: str, host: str, port: int = 1883, *, prefix: str = "faceguard",
                 username: str = "", password: str = "", tls: bool = False,
                 ca_file: str = "", outbox: Outbox | None = None,
                 lock_type: LockType = LockType.FAIL_SECURE, pulse_s: float = 3.0,
                 ack_timeout_s: float = 5.0, backoff_s: tuple[float, float] = (0.5, 30.0),
                 discovery: bool = True, settle_s: float = RECONNECT_SETTLE_S) -> None:
        super().__init__(door, lock_type, pulse_s)
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise DoorError("the mqtt door driver needs paho-mqtt (pip install "
                            "paho-mqtt)") from None
        if not host:
            raise DoorError("door.mqtt.host is empty: set the broker's address")
        self._mqtt = mqtt
        self.host, self.port, self.ack_timeout_s = host, port, ack_timeout_s
        self.base = f"{prefix.strip('/')}/{door}"
        self._discovery = discovery
        self._connected = threading.Event()  # the broker accepted the connection
        self._sending = threading.Event()  # ... and the outbox may publish (settled)
        self._connections = 0  # connections made so far (a timer of an older one is ignored)
        self.settle_s = settle_s
        self._inflight: dict[str, Any] = {}  # event id -> MQTTMessageInfo (this connection)
        self._inflight_lock = threading.Lock()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=f"faceguard-{_slug(door)}", protocol=mqtt.MQTTv311)
        if username:
            client.username_pw_set(username, password or None)
        if tls:
            try:
                client.tls_set(ca_certs=ca_file or None, cert_reqs=ssl.CERT_REQUIRED)
            except (OSError, ssl.SSLError, ValueError) as error:
                raise DoorError(f"cannot set up MQTT TLS: {error}") from error
        client.will_set(f"{self.base}/availability", "offline", qos=1, retain=True)
        client.reconnect_delay_set(min_delay=max(1, int(backoff_s[0])),
                                   max_delay=max(1, int(backoff_s[1])))
        client.max_inflight_messages_set(20)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client
        outbox = outbox or MemoryOutbox()
        where = f"mqtt {host}:{port}/{self.base}"
        self.events = Sender(outbox, f"{where}/event", lambda item: self._publish(item,
                             "event"), backoff_s=backoff_s, on_change=self._notify)
        self.commands = Sender(outbox, f"{where}/command", lambda item: self._publish(item,
                               "command"), backoff_s=backoff_s, on_change=self._notify)
        try:
            client.connect_async(host, port, keepalive=30)
        except (OSError, ValueError) as error:
            raise DoorError(f"cannot reach the MQTT broker {host}:{port}: {error}") from error
        client.loop_start()

    # -- connection ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the broker accepted the connection (and it has not dropped)."""
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        """Wait for the broker."""
        return self._connected.wait(timeout_s)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("MQTT broker %s:%s refused the connection: %s", self.host, self.port,
                        reason)
            return
        client.publish(f"{self.base}/availability", "online", qos=1, retain=True)
        client.publish(f"{self.base}/lock/state", self._lock_payload(), qos=1, retain=True)
        for topic in ("contact", "exit_button", "lock/set"):
            client.subscribe(f"{self.base}/{topic}", qos=1)
        if self._discovery:
            for topic, config in self.discovery_configs().items():
                client.publish(topic, json.dumps(config, sort_keys=True), qos=1, retain=True)
        self._connected.set()
        self._connections += 1
        if self._connections == 1 or self.settle_s <= 0:
            self._start_sending(self._connections)
        else:  # a reconnect: let the subscribers of a restarted broker subscribe again
            timer = threading.Timer(self.settle_s, self._start_sending, (self._connections,))
            timer.daemon = True
            timer.start()

    def _start_sending(self, connection: int) -> None:
        """Let the outbox publish on this connection (unless it has dropped since)."""
        if connection == self._connections and self._connected.is_set():
            self._sending.set()
            self.events._wake.set()
            self.commands._wake.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       properties: Any = None) -> None:
        if self._connected.is_set():
            log.warning("MQTT broker %s:%s disconnected (%s); reconnecting", self.host,
                        self.port, reason)
        self._sending.clear()
        self._connected.clear()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        topic = message.topic[len(self.base) + 1:]
        text = message.payload.decode("utf-8", "replace").strip()
        if topic == "contact":
            value = "open" if text.lower() in ("open", "on", "1", "true") else "closed"
            self._notify("contact", value)
        elif topic == "exit_button":
            self._notify("exit_button", text)
        elif topic == "lock/set" and text.upper() == "UNLOCK":
            self._notify("remote_unlock", "home assistant")

    def _lock_payload(self) -> str:
        return "UNLOCKED" if self._state == "unlocked" else "LOCKED"

    # -- Home Assistant ------------------------------------------------------------------------

    def discovery_configs(self) -> dict[str, dict[str, Any]]:
        """Home Assistant MQTT discovery: topic -> config, for the lock and two sensors."""
        uid = f"faceguard_{_slug(self.door)}"
        device = {"identifiers": [uid], "name": f"FaceGuard {self.door}",
                  "manufacturer": "FaceGuard", "model": "face-recognition kiosk"}
        common = {"availability_topic": f"{self.base}/availability", "device": device}
        return {
            f"{DISCOVERY_PREFIX}/lock/{uid}/config": {
                **common, "name": "Door lock", "unique_id": f"{uid}_lock",
                "command_topic": f"{self.base}/lock/set",
                "state_topic": f"{self.base}/lock/state", "payload_lock": "LOCK",
                "payload_unlock": "UNLOCK", "state_locked": "LOCKED",
                "state_unlocked": "UNLOCKED"},
            f"{DISCOVERY_PREFIX}/binary_sensor/{uid}_contact/config": {
                **common, "name": "Door contact", "unique_id": f"{uid}_contact",
                "device_class": "door", "state_topic": f"{self.base}/contact",
                "payload_on": "open", "payload_off": "closed"},
            f"{DISCOVERY_PREFIX}/sensor/{uid}_last/config": {
                **common, "name": "Last access", "unique_id": f"{uid}_last",
                "state_topic": f"{self.base}/event",
                "value_template": "{{ value_json.action }}: {{ value_json.person or '-' }}",
                "json_attributes_topic": f"{self.base}/event"},
        }

    # -- delivery ------------------------------------------------------------------------------

    def _publish(self, item: Item, kind: str) -> None:
        """Publish once (per connection lifetime) and wait for the PUBACK."""
        with self._inflight_lock:
            info = self._inflight.get(f"{kind}:{item.event_id}")
            if info is None:
                if not self._sending.is_set():
                    raise DeliveryError(f"not connected to {self.host}:{self.port}" if not
                                        self._connected.is_set() else
                                        f"reconnected to {self.host}:{self.port}, settling")
                info = self._client.publish(f"{self.base}/{kind}", item.payload, qos=1)
                self._inflight[f"{kind}:{item.event_id}"] = info
        try:
            info.wait_for_publish(self.ack_timeout_s)
        except (RuntimeError, ValueError) as error:
            with self._inflight_lock:
                self._inflight.pop(f"{kind}:{item.event_id}", None)
            raise DeliveryError(str(error)) from None
        if not info.is_published():
            raise DeliveryError(f"no acknowledgement from {self.host}:{self.port} yet")
        with self._inflight_lock:
            self._inflight.pop(f"{kind}:{item.event_id}", None)

    def _send(self, event: DoorEvent) -> DoorResult:
        body = event.to_json(self.lock_type)
        self.events.queue(event.event_id, json.dumps(body, sort_keys=True))
        if event.action == "unlock":
            command = {"event_id": event.event_id, "command": "unlock",
                       "pulse_s": event.pulse_s, "expires": body["expires"],
                       "lock_type": self.lock_type.value}
            self.commands.queue(event.event_id, json.dumps(command, sort_keys=True))
            self._set_state("unlocked")
            timer = threading.Timer(self.pulse_s, self._set_state, ("locked",))
            timer.daemon = True
            timer.start()
        return DoorResult(event.event_id, False, queued=True,
                          message=f"queued for {self.host}:{self.port}")

    def _set_state(self, state: str) -> None:
        self._notify("state", state)
        if self._connected.is_set():
            self._client.publish(f"{self.base}/lock/state", self._lock_payload(), qos=1,
                                 retain=True)

    def wait(self, event_id: str, timeout_s: float) -> DoorResult:
        """Wait for the broker's PUBACK of the event."""
        return self.events.outcome(event_id, timeout_s, pending="not published yet",
                                   done=f"published to {self.host}:{self.port}")

    def close(self) -> None:
        """Mark the kiosk offline, stop the senders and the network loop."""
        self.events.close()
        self.commands.close()
        if self._connected.is_set():
            info = self._client.publish(f"{self.base}/availability", "offline", qos=1,
                                        retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(1.0)
        self._client.disconnect()
        self._client.loop_stop()
