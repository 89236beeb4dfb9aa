"""Data shipped with the adequacy core (see README.md beside this file for provenance)."""
