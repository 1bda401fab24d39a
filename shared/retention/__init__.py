"""Retention (P19, P27): how long each kind of data is kept, and the sweep that enforces it."""
