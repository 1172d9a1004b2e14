"""Tenantry: a self-hosted partner platform for dashboards."""

__version__ = "0.1.0"
