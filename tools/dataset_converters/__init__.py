"""Builders of the data sets the demos and tests use."""
