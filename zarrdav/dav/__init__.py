"""The WebDAV and HTML face of zarrdav: routes become resources become responses."""
