"""The building blocks of the CRD's types: the wire convention (camelCase, unknown fields
refused), name and URL patterns, and CEL rules carried into the generated CRD."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


CONFIGMAP_KEY = r"^[-._a-zA-Z0-9]+$"


HTTP_URL_RULE = "isURL(self) && url(self).getScheme() in ['http', 'https']"


ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]


HttpPath = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^/[^\s?#]*$")]


# Segments of unreserved characters, none starting with a dot (no `.` or `..`), no query,
# no percent-encoding: a path that means the same to every HTTP stack it passes through.
PLAIN_PATH = r"^(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+$"
PlainPath = Annotated[str, Field(min_length=2, max_length=256, pattern=PLAIN_PATH)]


Percent = Annotated[float, Field(ge=0, le=100)]


HttpUrl = Annotated[
    str,
    Field(
        max_length=2048,
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": HTTP_URL_RULE, "message": "must be an http:// or https:// URL"}
            ]
        },
    ),
]


def cel(*rules: tuple[str, str]) -> dict[str, Any]:
    """json_schema_extra carrying CEL rules (rule, message) for the generated CRD."""
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


class Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are an error."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )
