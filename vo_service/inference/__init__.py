"""The registered models' networks, run in the web process without torch (ONNX Runtime)."""
