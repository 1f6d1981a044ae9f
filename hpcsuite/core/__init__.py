"""Layers every kernel stands on; nothing here knows a kernel."""
