"""Paging and sinks: the webhook page, Alertmanager and the alerts they carry."""
