"""The journal: the bridge's durable record (sessions now; signals and orders next)."""
