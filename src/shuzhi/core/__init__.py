"""Settings, database, errors, ids, clock, permissions, change audit, workflow, events."""
