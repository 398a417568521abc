"""The Automation API driver: workspace, local backend, secrets, preview/up/destroy/refresh.

Importing this package does not import pulumi; the modules that need it import it lazily.
"""
