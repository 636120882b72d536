"""Models of the Charging profiles app."""
