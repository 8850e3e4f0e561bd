"""User-facing error types: their message is what a person reads, on one line."""


class FaceGuardError(Exception):
    """Base class for errors that carry a clear, user-facing message."""


class ImageError(FaceGuardError):
    """An image file could not be read or is unusable."""


class ModelError(FaceGuardError):
    """A model file is missing, damaged or of the wrong shape."""


class LibraryError(FaceGuardError):
    """The face library database cannot be opened or written."""


class LibraryClosedError(LibraryError):
    """The face library (or the application context holding it) was closed, and something
    still called into it: a window or a timer that outlived the shutdown. Never retried or
    papered over with a stale value."""

