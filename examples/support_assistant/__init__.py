"""The support-assistant example: a conversation-level retrieval-profile experiment."""
