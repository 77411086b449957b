"""AIGC Studio: an offline writing and design assistant."""

__version__ = "0.1.0"
