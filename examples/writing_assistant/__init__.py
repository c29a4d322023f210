"""The writing-assistant example: a user-level style experiment (one person keeps one style
across all their sessions)."""
