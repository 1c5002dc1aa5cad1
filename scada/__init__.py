"""cityscada: the control server of a city's single control post."""

__version__ = "0.1.0"
