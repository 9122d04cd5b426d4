"""Versioned SQL migrations, one folder per dialect (``sqlite/``, ``postgres/``)."""
