"""assess, pure: observations + thresholds -> each check's level, health and severity."""
