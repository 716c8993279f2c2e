"""The journal's schema history: Alembic revisions in ``versions/``, run by the bridge itself
at start (:func:`bridge.journal.schema.create_schema`), never by hand.

Every change to ``bridge/journal/tables.py`` comes with a new revision here; README.md
("Changing the journal's tables") says how.
"""

#: The newest revision. A fresh journal is created from the tables and stamped with it, and
#: a journal at it is left alone, without importing Alembic or loading the revisions (that
#: costs ~90 ms, and the suite starts a bridge hundreds of times); the tests check that it
#: names the head of ``versions/``.
HEAD = "0003"
