"""Capacity planning: the smallest setting of one scenario field that meets every target."""
