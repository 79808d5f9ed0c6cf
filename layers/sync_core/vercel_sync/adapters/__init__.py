"""The adapters at the edges (Vercel over httpx, AWS over boto3), handed to the services."""
