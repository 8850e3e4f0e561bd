"""FaceGuard: face-recognition access control and attendance kiosk."""

__version__ = "0.1.0"
