"""VOSI 1.1: availability, capabilities (TAPRegExt) and tables (VODataService) of TAP."""
