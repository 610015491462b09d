"""Fixtures shared by the integration tests that call the operator's own code against the lab."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kubernetes.aio import client

from venue_lab.session import Lab
from venue_operator.kube import calls


@pytest.fixture
async def api(the_lab: Lab) -> AsyncIterator[client.ApiClient]:
    """An API client as the operator makes one (kube.connect), on the lab's kubeconfig."""
    connection = await calls.connect(str(the_lab.cluster.kubeconfig))
    yield connection
    await connection.close()
