"""shuzhi (数治 · 数智): the integrated intelligent public data platform."""

__version__ = "0.1.0"
