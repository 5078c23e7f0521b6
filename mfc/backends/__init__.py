"""Backends: each takes a `Program` (mfc.ir) and returns something that runs it."""
