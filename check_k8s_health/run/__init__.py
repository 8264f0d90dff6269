"""A whole run: every check concurrently within the deadline (engine), then one state and status line (assessment)."""
