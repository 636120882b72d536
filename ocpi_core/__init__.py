"""The OCPI protocol core every module app uses (DESIGN.md)."""
