"""Multi-scenario click models: STAR, scenario-gated experts (ScenarioMoE), PEPNet, M2M,
AdaSparse, SAR-Net and HAMUR. Each routes rows by scenario with :mod:`mtrec.nn.scenario`."""
