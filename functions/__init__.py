"""One package per deployed Cloud Function; each `main.py` is a thin entry point."""
