"""The store's one exception type, importable by every store module without cycles."""


class DatabaseError(RuntimeError):
    """The database cannot be used (corrupt, foreign, locked, full, unreachable, or holding a value
    it should not); the message is one line saying what and, where it can, what to do."""
