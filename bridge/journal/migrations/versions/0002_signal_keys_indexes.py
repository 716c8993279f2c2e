"""Index the dedup keys by signal and by expiry.

The ``id:<alert_id>`` keys are kept forever, so the table grows with the history, and both
of its clean-ups searched the whole of it: pruning old signals deletes their keys by
``signal_id``, and the housekeeping tick deletes lapsed ``body:`` keys by ``expires_at``.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision: str | None = "0001"


def upgrade() -> None:
    op.create_index("ix_signal_keys_signal", "signal_keys", ["signal_id"])
    op.create_index("ix_signal_keys_expires", "signal_keys", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_signal_keys_expires", table_name="signal_keys")
    op.drop_index("ix_signal_keys_signal", table_name="signal_keys")
