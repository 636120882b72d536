"""Models of the Charge point gateway app."""
