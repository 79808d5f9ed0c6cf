"""Developer tools: the local runner of the handlers and the Vercel stub it talks to."""
