"""What each admin role may do.

- ``administrator``: everything (accounts, settings, leaving kiosk mode, encryption, people,
  reports, logs).
- ``manager``: logs, reports (attendance, CSV exports) and people (enrol, edit, remove,
  import, export a person's data).
- ``viewer``: the entry log only.

The window hides what the signed-in role may not do, and every verb that needs a permission
checks it again (:func:`require`), so a hidden menu is never the only guard.
"""

from __future__ import annotations

import enum

from faceguard.errors import FaceGuardError


class Permission(enum.Enum):
    """Something an admin account may be allowed to do."""

    LOGS = "see the entry log"
    REPORTS = "export reports and attendance"
    PEOPLE = "enrol and manage people"
    SETTINGS = "change the settings"
    ACCOUNTS = "manage admin accounts"
    KIOSK = "leave kiosk mode and change the video source"


ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "administrator": frozenset(Permission),
    "manager": frozenset({Permission.LOGS, Permission.REPORTS, Permission.PEOPLE}),
    "viewer": frozenset({Permission.LOGS}),
}


class NotAllowed(FaceGuardError):
    """The signed-in account's role does not allow this."""


def may(role: str, permission: Permission) -> bool:
    """Whether ``role`` allows ``permission`` (an unknown role allows nothing)."""
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


def require(role: str, permission: Permission, account: str) -> None:
    """Raise :class:`NotAllowed` with a plain reason unless ``role`` allows ``permission``."""
    if not may(role, permission):
        raise NotAllowed(f"the {role} account {account!r} may not {permission.value}; "
                         "ask an administrator")
