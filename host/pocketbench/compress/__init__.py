"""Compression as data: a variant is a `Recipe` of frozen step dataclasses applied in order."""
