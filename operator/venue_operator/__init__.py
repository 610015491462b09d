"""venue-operator: the Venue Service runbook, automated as a Kubernetes operator."""
