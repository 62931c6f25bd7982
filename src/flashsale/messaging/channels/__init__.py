"""Delivery channels behind one contract (`contract.Channel`): SMTP email, a file outbox, webhooks."""
