"""The local lab: a real control plane, a real Prometheus and the venue simulator.

Used by the tests and the demo; the operator itself never imports it.
"""
