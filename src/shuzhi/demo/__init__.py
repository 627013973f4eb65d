"""A deterministic demo province, built through the same services a user would call."""
