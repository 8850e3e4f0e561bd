"""The kiosk's side of the sync, in its SQLite library (tables of schema step 012).

Reads what waits for upload (:mod:`.outgoing`: outbox rows, people/templates/groups with a
change count) and applies the server's changes (:mod:`.incoming`: people, templates, groups,
holidays, other doors' events) in one local transaction per batch, with the ``applying``
marker set so the triggers of :mod:`faceguard.library.fleet_tables` do not queue them back to
the server. The join and the sync state are in :mod:`.state`. The sync engine uses all three
as ``local.<name>``, hence the names gathered here.
"""

from faceguard.fleet.local.incoming import (
    Applied,
    apply_event,
    apply_group,
    apply_holiday,
    apply_person,
    apply_template,
    applying,
)
from faceguard.fleet.local.outgoing import (
    OutRow,
    dirty_groups,
    dirty_people,
    dirty_templates,
    first_queued,
    kept_change_counts,
    mark_pushed,
    outbox_batch,
    outbox_done,
    outbox_failed,
    outbox_from,
    renumber,
)
from faceguard.fleet.local.state import (
    Waiting,
    fleet_uid,
    get_state,
    kiosk_names,
    mark_joined,
    set_state,
    waiting,
    write_state,
)

__all__ = [
    "Applied", "OutRow", "Waiting", "apply_event", "apply_group", "apply_holiday",
    "apply_person", "apply_template", "applying", "dirty_groups", "dirty_people",
    "dirty_templates", "first_queued", "fleet_uid", "get_state", "kept_change_counts",
    "kiosk_names", "mark_joined", "mark_pushed", "outbox_batch", "outbox_done",
    "outbox_failed", "outbox_from", "renumber", "set_state", "waiting", "write_state",
]
