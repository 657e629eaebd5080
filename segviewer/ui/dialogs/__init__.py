"""The viewer's dialogs, one module each (import the one you need: they load nothing heavy):
connect (ConnectDialog; the ConnectionSpec it builds is core's), export_checkpoint
(ExportCheckpointDialog) and batch_export (BatchExportDialog); fields holds the widgets they
share."""
