"""The revisions, oldest first: 0001 is the journal as it was before migrations."""
