"""The event outbox: trial notices written into it, and its fan-out to webhooks and e-mail."""
