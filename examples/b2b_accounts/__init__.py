"""The B2B example: an account-level model-route experiment (every user of one tenant gets the
same model route)."""
