"""Background jobs that follow the order record: hold expiry now; reminders and fulfilment later."""
