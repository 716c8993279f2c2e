"""Index the signals by status and account.

The dispatcher asks which accounts have signals queued several times a second, and a
fan-out asks it for all of its accounts at once; the queue's own index leads with the
account, so each ask read every signal ever journaled, and the alert path slowed down as the
history grew. With this index the ask reads only the queued ones.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision: str | None = "0002"


def upgrade() -> None:
    op.create_index("ix_signals_status", "signals", ["status", "account"])


def downgrade() -> None:
    op.drop_index("ix_signals_status", table_name="signals")
