"""The rollout guard: from a template change until the rollout is baked, new pods vs old."""
