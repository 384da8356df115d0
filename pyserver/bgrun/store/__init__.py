"""The job store: a SQLite database mirrored to per-job JSON record files (see mirror.py)."""

from .mirror import STATE_DIR, DatabaseLocked, DatabaseUnavailable, Store, SyncStatus, now_iso

__all__ = ["STATE_DIR", "DatabaseLocked", "DatabaseUnavailable", "Store", "SyncStatus", "now_iso"]
