"""Models of the CDRs app."""
