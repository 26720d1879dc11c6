"""Multi-task click models: Shared-Bottom, MMoE, PLE, ESMM."""
