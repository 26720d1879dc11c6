"""Retrieval models: score every item for a user by a dot product of two towers' vectors."""
