"""Rotation sync: a resource secret changed, so the Vercel resources using it get its new values."""
