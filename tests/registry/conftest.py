"""Fixtures of the registry tests: the TAP tests' server with data, and STILTS."""

from tests.tap.conftest import archive, stilts, tap_data, tap_env, tap_server  # noqa: F401
