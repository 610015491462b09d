"""decide, pure: an assessment + history + policy -> at most one action, with its reason."""
