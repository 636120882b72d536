"""Django's SQLite backend whose write transactions queue on a file lock (see base.DatabaseWrapper)."""
