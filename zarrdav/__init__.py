"""zarrdav: a read-only WebDAV server for versioned Zarrs."""

__version__ = "0.1.0"
