"""Single source of the SDK version (kept in sync with pyproject.toml).

Lives in its own module so the client can build its User-Agent without a
circular import through the package ``__init__``.
"""

__version__ = "0.1.0"
