"""Administrative divisions (GB/T 2260) and tree queries."""
