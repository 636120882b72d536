"""Models of the Commands app."""
