"""A stand-in for TF Serving, for tests and development. It is NOT TF Serving.

It serves `<base>/<model>/<version>/` SavedModels (loaded with TensorFlow in this process) over
TF Serving's gRPC API (official protos) and REST API, with the same status codes, error texts and
response formats, so the client can be tested end to end without a TF Serving binary. Use real
TF Serving (`tensorflow/serving` Docker image) for anything but tests and local development.
"""
