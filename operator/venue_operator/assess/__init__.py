"""assess, pure: observations + thresholds -> each check's level, health and severity.

assessment.assess() reads every check of checks.py (each with its runbook section) and
confirms its level by hysteresis.py; health and severity follow.
"""
