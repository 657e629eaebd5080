"""DeepLab research checkpoint -> TF Serving SavedModel. Imports TensorFlow lazily.

The version written into each model's metadata is the package's (`segviewer.__version__`).
"""


class ExportError(Exception):
    """A user error (bad checkpoint, flags, target); the message is one line naming the fix."""
