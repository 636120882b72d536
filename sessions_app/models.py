"""Models of the Sessions app."""
