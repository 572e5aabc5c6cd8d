"""The mock Request Finance: an Auth0-style OAuth/OIDC server and the API, one handler.

This package never imports pytest: the plugin, the transports and rfcheck's own
tests all drive it through :class:`rfcheck.provider.app.Provider`.
"""
