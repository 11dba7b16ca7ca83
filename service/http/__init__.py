"""The HTTP edge: what happens to a request around the routes. Connection and header limits,
Host and Origin checks, the admin token, rate limits, reading bodies, the dependencies routes
share, OpenAPI helpers, and the handlers that render every error in one shape."""
