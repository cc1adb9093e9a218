"""Entities with a history: deals and leads, contacts, lead views, attribution and spend (pure).

``registry`` lists every entity kind and applies a batch's events to their stored states.
"""
