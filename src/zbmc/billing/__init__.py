"""Money and orders: the append-only ledger, the balance, and orders with an effective time."""
