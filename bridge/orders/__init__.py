"""The order service: the one place where a signal becomes broker orders."""
