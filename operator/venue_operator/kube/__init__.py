"""The Kubernetes adapters: the only code that imports the Kubernetes client."""
