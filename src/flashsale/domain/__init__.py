"""Pure rules of the trade: campaigns, sessions, flash items, holds, orders, prices. No I/O here."""
