"""Webhooks: the events table is the outbox; this package signs and delivers from it."""
