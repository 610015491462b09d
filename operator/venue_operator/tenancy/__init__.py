"""Tenant boundaries: which URLs and PromQL a namespace user may name, and redaction."""
