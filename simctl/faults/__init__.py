"""The fault plane: a Toxiproxy 2.x compatible TCP proxy server and a client for any Toxiproxy."""
