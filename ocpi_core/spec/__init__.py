"""OCPI 2.2.1 object and enum definitions (definitions.json) and the validator built on them."""
