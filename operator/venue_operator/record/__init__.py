"""record: what an assessment and an action do to status and Events; the operator's own metrics."""
