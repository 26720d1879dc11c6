"""Multi-scenario click models: STAR and scenario-gated experts."""
