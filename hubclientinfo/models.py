"""Models of the Hub client info app."""
