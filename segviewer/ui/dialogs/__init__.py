"""The viewer's dialogs: connect to a model, export a checkpoint, batch-export segmentations."""
