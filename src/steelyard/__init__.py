"""Steelyard: a self-hostable data-labeling platform that speaks Scale AI's v1 API."""

__version__ = "0.1.0"
