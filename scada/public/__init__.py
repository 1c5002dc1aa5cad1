"""The public parking feed: live car-park and on-street availability for residents' apps (read-only HTTP JSON)."""
