"""Many doors, one library: kiosks share people, rules and the entry log through PostgreSQL.

- :mod:`faceguard.fleet.server_schema`: connecting to the server, applying its numbered
  migrations (the SQL in :mod:`faceguard.fleet.server_migrations`) and its status;
- :mod:`faceguard.fleet.config`: a kiosk's join (server address, kiosk id, credentials file);
- :mod:`faceguard.fleet.local`: the kiosk's side in its SQLite library (sync state, outbox and
  changed rows going up, the server's changes applied coming down);
- :mod:`faceguard.fleet.engine`: one sync round, pushing (:mod:`faceguard.fleet.upload`) and
  pulling (:mod:`faceguard.fleet.download`); :mod:`faceguard.fleet.sync_loop` runs rounds in
  the background with bounded retries and back-off; :mod:`faceguard.fleet.status` says what a
  round did and where the kiosk stands.

Nothing here imports Qt; the GUI reads :meth:`AppContext.fleet_status`.
"""
