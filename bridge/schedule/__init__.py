"""The scheduler's work: its jobs, the exchanges' trading calendar and leader election."""
