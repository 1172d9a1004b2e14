"""Webhooks: partners subscribe a URL to events; the worker posts each event to it, signed."""
