"""Headless Chromium through nginx: the second-factor pages as a city employee uses them."""
