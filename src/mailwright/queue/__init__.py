"""Outbound delivery: the durable queue's runner, routing, SMTP client and DSNs."""
