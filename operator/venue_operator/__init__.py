"""venue-operator: the Venue Service runbook, automated as a Kubernetes operator."""

from importlib.metadata import PackageNotFoundError, version

try:
    # The package metadata (pyproject.toml) is the one place the version is written.
    __version__ = version("venue-operator")
except PackageNotFoundError:  # a source tree on PYTHONPATH that was never installed
    __version__ = "0+unknown"
