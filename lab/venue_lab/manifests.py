"""Objects the lab applies beside a VenueService: the Deployment it watches."""

from __future__ import annotations

from typing import Any

IMAGE = "gcr.io/tickettoken/venue-service:v1"


def deployment(
    name: str, image: str = IMAGE, replicas: int = 2, namespace: str | None = None
) -> dict[str, Any]:
    """A Deployment of one `venue-service` container, selected by `app: <name>`."""
    labels = {"app": name}
    metadata: dict[str, Any] = {"name": name, "labels": labels}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata,
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [{"name": "venue-service", "image": image}]}},
        },
    }  # fmt: skip
