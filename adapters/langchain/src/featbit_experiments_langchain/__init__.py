"""LangChain adapter for featbit-experiments."""
