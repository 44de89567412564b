"""Deployment files (deploy/) run for real: nginx, Redis."""
