"""The PySide6 kiosk window: a thin layer over :mod:`faceguard.kiosk` and the core."""
