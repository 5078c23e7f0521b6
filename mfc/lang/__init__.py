"""The front end: spec text to a checked `Program` (mfc.ir)."""
