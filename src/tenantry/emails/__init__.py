"""The e-mail outbox: requests write e-mails here, in their own transaction; the worker sends
them after commit, outside every lock, with leases and retries like event deliveries."""
