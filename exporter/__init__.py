"""DeepLab research checkpoint -> TF Serving SavedModel (DESIGN.md). Imports TensorFlow lazily."""

__version__ = "0.1.0"


class ExportError(Exception):
    """A user error (bad checkpoint, flags, target); the message is one line naming the fix."""
