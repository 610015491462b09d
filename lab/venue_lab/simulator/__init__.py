"""The venue-service simulator: services that look like the real one from the outside.

Health endpoints, Prometheus metrics from synthetic traffic, and faults switchable at run
time (admin API, control API, Python, or a followed Deployment's image). For tests,
benchmarks and the demo; see `python -m venue_lab.simulator --help`.
"""

from venue_lab.simulator.behaviour import ServiceBehaviour
from venue_lab.simulator.control import Simulator
from venue_lab.simulator.faults import (
    FAULT_FIELDS,
    HEALTHY,
    FaultError,
    Faults,
    faults_for_image,
    image_tag,
    parse_overrides,
)
from venue_lab.simulator.follow import DeploymentFollower, FollowTarget, kubernetes_image_reader
from venue_lab.simulator.service import SimulatedService

__all__ = [
    "FAULT_FIELDS",
    "HEALTHY",
    "DeploymentFollower",
    "FaultError",
    "Faults",
    "FollowTarget",
    "ServiceBehaviour",
    "SimulatedService",
    "Simulator",
    "faults_for_image",
    "image_tag",
    "kubernetes_image_reader",
    "parse_overrides",
]
