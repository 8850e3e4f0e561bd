"""User-facing error types: their message is what a person reads, on one line."""


class FaceGuardError(Exception):
    """Base class for errors that carry a clear, user-facing message."""


class ImageError(FaceGuardError):
    """An image file could not be read or is unusable."""


class ModelError(FaceGuardError):
    """A model file is missing, damaged or of the wrong shape."""


class LibraryError(FaceGuardError):
    """The face library database cannot be opened or written."""

