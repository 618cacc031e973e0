"""MedInjection-FR study workflow: the package holding all of the workflow's logic."""

__version__ = "0.1.0"
