"""Telemetry: what is measured around a case besides the backend (environment, GPUs)."""
