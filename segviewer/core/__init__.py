"""Model-, image- and network-side logic. Never imports Qt."""
