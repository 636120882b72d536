"""Models of the Tokens app."""
