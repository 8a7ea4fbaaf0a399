"""The HTTP edge: connections, requests, answers and the layers every request passes."""
