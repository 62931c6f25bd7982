"""Use cases: each takes a command and the dependencies, and returns a result or raises FlashSaleError."""
