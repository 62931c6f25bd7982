"""Messages to shoppers: 催付 reminders and campaign waves, within quiet hours, caps and opt-outs.

`rules` and `templates` are pure; `channels/` are the adapters that deliver; `store` keeps the
queue and the delivery log; `dispatch` is the scheduler that drives them (see docs/messaging.md).
"""
