"""The REST API under /api/v1: one router module per package."""

# Routers carry the full prefix themselves, so each route knows its whole path (metrics
# label requests by it).
PREFIX = "/api/v1"
