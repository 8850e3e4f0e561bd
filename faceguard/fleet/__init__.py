"""Many doors, one library: kiosks share people, rules and the entry log through PostgreSQL.

- :mod:`faceguard.fleet.server_schema`: the server's tables, built by numbered migrations,
  and the least-privilege role kiosks log in with;
- :mod:`faceguard.fleet.config`: a kiosk's join (server address, kiosk id, credentials file);
- :mod:`faceguard.fleet.local`: the kiosk's side in its SQLite library (outbox, id map);
- :mod:`faceguard.fleet.engine`: one sync round (up: outbox and local edits; down: changes
  by revision) and the background loop with bounded retries and back-off.

Nothing here imports Qt; the GUI reads :meth:`AppContext.fleet_status`.
"""
