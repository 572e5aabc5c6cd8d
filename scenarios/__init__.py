"""The Going Live catalogue as pytest tests: one module per group, one test per requirement ID."""
