"""How rfcheck drives an integration: the :class:`Driver` interface and its kinds."""

from rfcheck.targets.base import Driver, DriverError, StepFailed

__all__ = ["Driver", "DriverError", "StepFailed"]
