"""Generative (P5-style, text-to-text) recommendation: the model, item codes and prompts."""
