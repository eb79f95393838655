"""Cart, checkout, orders with their state machine, stock reservation and refunds."""
