"""The kiosk's core: frame sources, the per-frame pipeline, voting decisions, the headless loop,
the demo and the admin PIN. No Qt here: the window in :mod:`faceguard.gui` is a thin layer."""
