"""HTTP webhook: each event as a signed JSON POST, through the outbox.

The body is JSON (:meth:`~faceguard.core.door.base.DoorEvent.to_json`), signed with the
shared secret: ``X-FaceGuard-Signature: sha256=<hex HMAC-SHA256 of the raw body>``; the event
id also goes in ``X-FaceGuard-Event`` and ``Idempotency-Key``. A 2xx answer confirms the
message; anything else (refused, timeout, 5xx, 4xx) is tried again with back-off, the same
bytes each time. TLS certificates are always verified (``door.webhook.ca_file`` adds a
private CA).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from faceguard.core.door.base import DoorDriver, DoorError, DoorEvent, DoorResult, LockType
from faceguard.core.door.outbox import DeliveryError, Item, MemoryOutbox, Outbox, Sender

SIGNATURE_HEADER = "X-FaceGuard-Signature"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect is an error: the signed body is not re-posted elsewhere


class WebhookDoor(DoorDriver):
    """POSTs each event to ``url``; kept in ``outbox`` until the endpoint answers 2xx."""

    kind = "webhook"

    def __init__(self, door: str, url: str, secret: str, *, outbox: Outbox | None = None,
                 timeout_s: float = 5.0, ca_file: str = "",
                 lock_type: LockType = LockType.FAIL_SECURE, pulse_s: float = 3.0,
                 backoff_s: tuple[float, float] = (0.5, 60.0)) -> None:
        super().__init__(door, lock_type, pulse_s)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DoorError(f"door.webhook.url must be an http:// or https:// address, not "
                            f"{url!r}")
        if not secret:
            raise DoorError("door.webhook.secret is empty: set a shared secret (faceguard "
                            "config set door.webhook.secret ...)")
        self.url, self._secret, self.timeout_s = url, secret, timeout_s
        try:
            context = ssl.create_default_context(cafile=ca_file or None)
        except (OSError, ssl.SSLError) as error:
            raise DoorError(f"cannot read door.webhook.ca_file {ca_file}: {error}") from error
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), _NoRedirect())
        self.sender = Sender(outbox or MemoryOutbox(), f"webhook {url}", self._post,
                             backoff_s=backoff_s, on_change=self._notify)

    def _post(self, item: Item) -> None:
        body = item.payload.encode()
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", SIGNATURE_HEADER: sign(self._secret, body),
            "X-FaceGuard-Event": item.event_id, "Idempotency-Key": item.event_id,
            "User-Agent": "FaceGuard"})
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                response.read(65536)
                status = response.status
        except urllib.error.HTTPError as error:
            raise DeliveryError(f"HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, OSError) as error:
            raise DeliveryError(str(getattr(error, "reason", error))) from None
        if not 200 <= status < 300:
            raise DeliveryError(f"HTTP {status}")

    def _send(self, event: DoorEvent) -> DoorResult:
        payload = json.dumps(event.to_json(self.lock_type), sort_keys=True)
        self.sender.queue(event.event_id, payload)
        return DoorResult(event.event_id, False, queued=True, message=f"queued for {self.url}")

    def wait(self, event_id: str, timeout_s: float) -> DoorResult:
        """Wait for the endpoint's 2xx."""
        return self.sender.outcome(event_id, timeout_s, pending="not delivered yet",
                                   done=f"delivered to {self.url}")

    def close(self) -> None:
        """Stop sending; undelivered messages stay in the outbox."""
        self.sender.close()
