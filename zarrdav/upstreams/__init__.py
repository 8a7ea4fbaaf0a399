"""Clients of the services zarrdav reads from: the DANDI Archive API and S3."""
