"""Offline stand-ins for zarrdav's upstreams, for its tests and its demo."""
